"""How to train: :class:`TrainConfig`, every knob of a run that is not the model's.

Each field's comment is its ``--train.FIELD`` help text in ``python -m mindtf train``.
``time_budget`` is explained in :mod:`mindtf.training.budget`, ``average_last`` in
:mod:`mindtf.training.averaging`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from mindtf.config import dataclass_from_dict
from mindtf.errors import ConfigError, check_choice, check_range
from mindtf.precision import PRECISIONS
from mindtf.training.budget import parse_duration
from mindtf.training.schedules import Constant, Noam, WarmupCosine

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything about *how* to train (the model has its own config)."""

    max_steps: int = 2000  # optimiser steps in total (with --resume: the step to stop at)
    time_budget: Optional[str] = None  # training loop's wall time: 10m, 90s, 1h30m or seconds;
                                       # the lr decay ends there, max_steps stays a cap
                                       # (none: max_steps alone)
    batch_size: int = 12  # sequences (char-lm) or sentence pairs (translation) per micro-batch
    grad_accum: int = 1  # micro-batches per optimiser step
    lr: float = 1e-3  # peak learning rate (cosine) / ignored by noam (uses noam_factor)
    min_lr: float = 1e-4  # learning rate at the end of the cosine decay
    warmup_steps: int = 100  # linear warmup steps
    schedule: str = "cosine"  # "cosine" | "noam" | "constant"
    noam_factor: float = 1.0  # scale of the noam schedule
    weight_decay: float = 0.1  # AdamW decoupled weight decay (not on biases and norms)
    beta1: float = 0.9  # AdamW beta1
    beta2: float = 0.99  # AdamW beta2
    eps: float = 1e-8  # AdamW epsilon
    grad_clip: float = 1.0  # max global norm; 0 disables
    label_smoothing: float = 0.0  # label smoothing of the cross-entropy
    mode: str = "graph"  # "graph" (compiled, fast) | "pynative" (op by op, for learning)
    precision: str = "fp32"  # "fp32" | "fp16" (dynamic loss scaling) | "bf16" | "auto" (CPU: fp32)
    loss_scale_init: float = 65536.0  # fp16: the first loss scale (halved after an overflow)
    loss_scale_window: int = 2000  # fp16: finite steps in a row before the loss scale doubles
    eval_interval: int = 250  # evaluate on the validation set and checkpoint every N steps
    eval_max_batches: Optional[int] = None  # None: the whole validation set
    log_interval: int = 10  # log the training loss every N steps
    keep_last: int = 2  # step checkpoints kept (the best one is kept separately)
    keep_best: bool = True  # keep checkpoints/best (lowest validation loss)
    average_last: int = 0  # at the end, average the last N step checkpoints into
                           # checkpoints/averaged (0: off; keeps at least N)
    max_bad_steps: int = 5  # stop after this many non-finite steps in a row
    seed: int = 0  # seed of the weights, data order and dropout
    out_dir: str = "runs/run"  # run folder: checkpoints, metrics, plot, config.yaml
    progress: bool = True  # show progress: a bar on a terminal, else a line per log_interval

    def __post_init__(self) -> None:
        name = f"{type(self).__name__}."
        for field, allowed in (("schedule", ("cosine", "noam", "constant")),
                               ("mode", ("graph", "pynative")),
                               ("precision", PRECISIONS),
                               ("keep_best", (True, False)), ("progress", (True, False))):
            check_choice(name + field, getattr(self, field), allowed)
        for field in ("max_steps", "batch_size", "grad_accum", "eval_interval", "log_interval",
                      "keep_last", "max_bad_steps", "loss_scale_window"):
            check_range(name + field, getattr(self, field), 1, integer=True)
        check_range(name + "eval_max_batches", self.eval_max_batches, 1, integer=True,
                    optional=True, fix="Unset it (none) to evaluate the whole validation set.")
        check_range(name + "seed", self.seed, 0, 2**32 - 1, integer=True)
        check_range(name + "warmup_steps", self.warmup_steps, 0, integer=True)
        check_range(name + "average_last", self.average_last, 0, integer=True,
                    fix="0 averages nothing; N averages the last N step checkpoints.")
        parse_duration(self.time_budget, name + "time_budget")
        check_range(name + "loss_scale_init", self.loss_scale_init, 1, 2.0**24,
                    fix="fp16 training starts at 65536 (2**16) by default.")
        for field in ("lr", "noam_factor", "eps"):
            check_range(name + field, getattr(self, field), 0, lo_open=True)
        for field in ("min_lr", "weight_decay"):
            check_range(name + field, getattr(self, field), 0)
        check_range(name + "grad_clip", self.grad_clip, 0, fix="0 disables clipping.")
        for field in ("beta1", "beta2", "label_smoothing"):
            check_range(name + field, getattr(self, field), 0, 1, hi_open=True)
        if self.schedule == "noam":
            check_range(name + "warmup_steps", self.warmup_steps, 1, integer=True,
                        fix="The noam schedule divides by it.")
        if self.schedule == "cosine":
            check_range(name + "warmup_steps", self.warmup_steps, 0, self.max_steps, integer=True,
                        fix=f"The warmup must fit in max_steps={self.max_steps}.")
        if not str(self.out_dir).strip():
            raise ConfigError(f"{name}out_dir={self.out_dir!r}: give the run folder's path.")

    @property
    def time_budget_s(self) -> Optional[float]:
        """:attr:`time_budget` in seconds (None: no budget); see :mod:`mindtf.training.budget`."""
        return parse_duration(self.time_budget, f"{type(self).__name__}.time_budget")

    def schedule_fn(self, d_model: Optional[int] = None):
        """The learning-rate schedule as a callable ``step -> lr``."""
        if self.schedule == "cosine":
            return WarmupCosine(self.lr, self.warmup_steps, self.max_steps, self.min_lr)
        if self.schedule == "noam":
            if d_model is None:
                raise ConfigError("the noam schedule needs the model width (d_model).")
            return Noam(d_model, self.warmup_steps, self.noam_factor)
        return Constant(self.lr)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return dataclass_from_dict(cls, d)
