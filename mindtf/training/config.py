"""How to train: :class:`TrainConfig`, every knob of a run that is not the model's.

Each field's comment is its ``--train.FIELD`` help text in ``python -m mindtf train``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from mindtf.config import dataclass_from_dict
from mindtf.errors import ConfigError
from mindtf.training.schedules import Constant, Noam, WarmupCosine

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything about *how* to train (the model has its own config)."""

    max_steps: int = 2000  # optimiser steps in total (with --resume: the step to stop at)
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
    precision: str = "fp32"  # "fp32" | "fp16" | "bf16" (fp32 on CPU)
    eval_interval: int = 250  # evaluate on the validation set and checkpoint every N steps
    eval_max_batches: Optional[int] = None  # None: the whole validation set
    log_interval: int = 10  # log the training loss every N steps
    keep_last: int = 2  # step checkpoints kept (the best one is kept separately)
    keep_best: bool = True  # keep checkpoints/best (lowest validation loss)
    max_bad_steps: int = 5  # stop after this many non-finite steps in a row
    seed: int = 0  # seed of the weights, data order and dropout
    out_dir: str = "runs/run"  # run folder: checkpoints, metrics, plot, config.yaml
    progress: bool = True  # show progress: a bar on a terminal, else a line per log_interval

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "noam", "constant"):
            raise ConfigError(f"schedule={self.schedule!r}: choose 'cosine', 'noam' or 'constant'.")
        if self.mode not in ("graph", "pynative"):
            raise ConfigError(f"mode={self.mode!r}: choose 'graph' or 'pynative'.")
        if self.precision not in ("fp32", "fp16", "bf16"):
            raise ConfigError(f"precision={self.precision!r}: choose 'fp32', 'fp16' or 'bf16'.")
        if self.schedule == "cosine" and not 0 <= self.warmup_steps <= self.max_steps:
            raise ConfigError(f"warmup_steps={self.warmup_steps} must be between 0 and "
                              f"max_steps={self.max_steps}.")
        for name in ("max_steps", "batch_size", "grad_accum", "max_bad_steps", "log_interval",
                     "eval_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}.")

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
