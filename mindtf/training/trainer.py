"""The training loop: :class:`Trainer` runs the compiled step with everything a real run needs.

::

    train_batches.next() ─> TrainStep (compiled) ─> every log_interval: metrics.jsonl, progress line
                                                 └> every eval_interval: evaluate (whole val set),
                                                    checkpoint (best, step_N, latest), loss.png

A warmup+cosine or Noam schedule, evaluation over the *whole* validation set, checkpoints with exact
resume (weights, optimiser moments, step, data order and RNG states), keep-best / keep-last-N, a
checkpoint on Ctrl-C, a progress bar on a terminal (plain lines in a log file), a JSONL metrics log
and a loss / learning-rate plot. The Trainer knows no model class: it calls the model's own
``save_pretrained`` / ``load_state_dict``.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn

from mindtf.errors import MindtfError
from mindtf.plotting import plot_training
from mindtf.progress import progress
from mindtf.runtime import execution_mode
from mindtf.training.checkpoints import (CHECKPOINTS, LATEST, latest_checkpoint, mark_latest,
                                         prune_checkpoints, restore_rng_states, rng_states,
                                         write_dir_atomically, write_json)
from mindtf.training.config import TrainConfig
from mindtf.training.step import EvalStep, build_train_step, evaluate, to_tensors
from mindtf.weights import read_state, write_safetensors

__all__ = ["Trainer", "TrainingDiverged"]


class TrainingDiverged(MindtfError):
    """Too many optimiser steps in a row had a non-finite loss or gradient."""


class Trainer:
    """Runs training with checkpoints, evaluation, logging and a plot.

    Args:
        model: the network (``GPT`` / ``Transformer``); its parameters are optimised.
        net_with_loss: e.g. :class:`~mindtf.training.losses.LMLossCell` around ``model``.
        config: a :class:`~mindtf.training.config.TrainConfig`.
        train_batches: an object with ``next() -> tuple of numpy arrays`` and
            ``state_dict()/load_state_dict()`` (:class:`~mindtf.data.batching.RandomLMBatches`,
            :class:`~mindtf.data.batching.EpochBatches`).
        eval_batches: a callable returning an iterable over the validation batches (all of them).
        tokens_per_batch: counts the tokens of a batch for the tokens/s figure.
        on_checkpoint: called with each checkpoint directory after it is written (e.g. to save
            the tokenizer next to the weights).
    """

    def __init__(self, model: nn.Cell, net_with_loss: nn.Cell, config: TrainConfig,
                 train_batches, eval_batches: Optional[Callable[[], Iterable]] = None,
                 tokens_per_batch: Optional[Callable[[Tuple[np.ndarray, ...]], int]] = None,
                 on_checkpoint: Optional[Callable[[Path], None]] = None):
        self.model, self.config = model, config
        self.out_dir = Path(config.out_dir)
        self.train_batches, self.eval_batches = train_batches, eval_batches
        self.tokens_per_batch = tokens_per_batch or (lambda b: int(np.prod(b[-1].shape)))
        self.on_checkpoint = on_checkpoint
        # the execution mode is applied around each call (train_one_step, evaluate, fit) and
        # restored afterwards, so a Trainer never leaves the process in another mode
        self.step_cell = build_train_step(model, net_with_loss, config)
        self.optimizer = self.step_cell.optimizer
        self.eval_cell = EvalStep(net_with_loss)
        self.schedule = config.schedule_fn(getattr(model, "hidden_size", None))
        self.step = 0
        self.best_val = float("inf")
        self.bad_in_a_row = 0
        self.history: List[dict] = []

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, name: Optional[str] = None) -> Path:
        """Write a resumable checkpoint to ``out_dir/checkpoints/<name>`` atomically."""
        name = name or f"step_{self.step:07d}"
        trainer_state = {"step": self.step, "best_val": self.best_val,
                         "bad_in_a_row": self.bad_in_a_row,
                         "train_batches": self.train_batches.state_dict(),
                         "rng": rng_states(), "config": self.config.to_dict(),
                         "schedule": self.schedule.describe(),
                         "mindspore": ms.__version__}

        def write(tmp: Path) -> None:
            self.model.save_pretrained(tmp)
            write_safetensors(self.optimizer.state_dict(), tmp / "optimizer.safetensors")
            write_json(tmp / "trainer.json", trainer_state)
            if self.on_checkpoint is not None:
                self.on_checkpoint(tmp)

        path = write_dir_atomically(self.out_dir / CHECKPOINTS / name, write)
        mark_latest(self.out_dir, name)
        prune_checkpoints(self.out_dir, self.config.keep_last)
        return path

    def resume(self, path: Optional[os.PathLike] = None) -> int:
        """Restore a checkpoint (default: the run's latest); returns its step."""
        if path is None:
            path = latest_checkpoint(self.out_dir)
            if path is None:
                raise MindtfError(f"nothing to resume: {self.out_dir / CHECKPOINTS / LATEST} "
                                  "does not exist.")
        path = Path(path)
        state = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
        self.model.load_state_dict(read_state(path / "model.safetensors"))
        self.optimizer.load_state_dict(read_state(path / "optimizer.safetensors"))
        self.step = int(state["step"])
        self.best_val = float(state["best_val"])
        self.bad_in_a_row = int(state.get("bad_in_a_row", 0))
        self.train_batches.load_state_dict(state["train_batches"])
        restore_rng_states(state["rng"])
        return self.step

    # ------------------------------------------------------------------ logging
    def _log(self, row: dict) -> None:
        self.history.append(row)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def plot(self) -> Optional[Path]:
        """Draw ``out_dir/loss.png``: training and validation loss, and the learning rate."""
        return plot_training(self.out_dir / "metrics.jsonl", self.out_dir / "loss.png")

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> Dict[str, float]:
        if self.eval_batches is None:
            return {}
        with execution_mode(self.config.mode):
            return evaluate(self.eval_cell, self.eval_batches(), self.config.eval_max_batches)

    # ------------------------------------------------------------------ training
    def _micro_batches(self) -> List[Tensor]:
        parts = [self.train_batches.next() for _ in range(self.config.grad_accum)]
        stacked = [np.stack([p[j] for p in parts]) for j in range(len(parts[0]))]  # (A, B, ...)
        self._last_tokens = sum(self.tokens_per_batch(p) for p in parts)
        return to_tensors(stacked)

    def train_one_step(self) -> Dict[str, float]:
        """Run one optimiser step and return ``{loss, grad_norm, lr, finite}``."""
        lr = float(self.schedule(self.step))
        self.step_cell.set_train(True)
        with execution_mode(self.config.mode):
            loss, norm, finite = self.step_cell(Tensor(lr, ms.float32), *self._micro_batches())
        finite = bool(finite.asnumpy())
        out = {"loss": float(loss.asnumpy()), "grad_norm": float(norm.asnumpy()), "lr": lr,
               "finite": finite}
        self.step += 1
        if finite:
            self.bad_in_a_row = 0
        else:
            self.bad_in_a_row += 1
            warnings.warn(f"step {self.step}: non-finite loss or gradient (loss={out['loss']}, "
                          f"grad norm={out['grad_norm']}); update skipped "
                          f"({self.bad_in_a_row}/{self.config.max_bad_steps} in a row).",
                          RuntimeWarning, stacklevel=2)
            if self.bad_in_a_row >= self.config.max_bad_steps:
                raise TrainingDiverged(
                    f"{self.bad_in_a_row} steps in a row had a non-finite loss or gradient "
                    f"(last at step {self.step}). Lower the learning rate (now {lr:.3g}), "
                    "check the data for bad values, or use fp32. The last good checkpoint is in "
                    f"{self.out_dir / 'checkpoints'}.")
        return out

    def fit(self) -> Dict[str, Any]:
        """Train until ``max_steps``; evaluate, log and checkpoint on the way.

        Returns a summary: final ``val_loss``, ``train_loss``, ``steps``, ``seconds``,
        ``tokens_per_s`` and the checkpoint directory. Ctrl-C writes a checkpoint first.
        """
        c = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        bar = progress(total=c.max_steps, initial=self.step, desc="training", unit="step",
                       disable=not c.progress, log_every=c.log_interval)
        t0 = time.perf_counter()
        self._tokens_seen = 0
        try:
            with execution_mode(c.mode):  # once for the loop (the calls inside then switch nothing)
                self._loop(bar, t0)
        except KeyboardInterrupt:
            bar.close()
            path = self.save_checkpoint(f"interrupted_step_{self.step:07d}")
            print(f"\ninterrupted at step {self.step}: checkpoint written to {path}")
            raise
        bar.close()
        seconds = time.perf_counter() - t0
        last = next((r for r in reversed(self.history) if "loss" in r), {})
        tokens = self._tokens_seen
        val = next((r["val_loss"] for r in reversed(self.history) if "val_loss" in r), None)
        return {"val_loss": val, "train_loss": last.get("loss"), "steps": self.step,
                "seconds": seconds, "tokens_per_s": tokens / max(seconds, 1e-9),
                "checkpoints": str(self.out_dir / "checkpoints"), "best_val": self.best_val}

    def _loop(self, bar, t0: float) -> None:
        c = self.config
        self._tokens_seen = 0
        window_t, window_tok = time.perf_counter(), 0
        while self.step < c.max_steps:
            out = self.train_one_step()
            self._tokens_seen += self._last_tokens
            window_tok += self._last_tokens
            if self.step % c.log_interval == 0 or self.step == c.max_steps:
                now = time.perf_counter()
                tps = window_tok / max(now - window_t, 1e-9)
                window_t, window_tok = now, 0
                self._log({"step": self.step, "loss": out["loss"], "lr": out["lr"],
                           "grad_norm": out["grad_norm"], "tokens_per_s": tps,
                           "elapsed_s": now - t0})
                bar.set_postfix(loss=f"{out['loss']:.4f}", lr=f"{out['lr']:.2e}",
                                tok_s=f"{tps:,.0f}")
            bar.update(1)  # after set_postfix: a plain log line shows this step's numbers
            if self.step % c.eval_interval == 0 or self.step == c.max_steps:
                self._eval_and_checkpoint()

    def _eval_and_checkpoint(self) -> None:
        metrics = self.evaluate()
        if metrics:
            row = {"step": self.step, "val_loss": metrics["loss"], "val_ppl": metrics["ppl"]}
            self._log(row)
            if metrics["loss"] < self.best_val:
                self.best_val = metrics["loss"]
                if self.config.keep_best:
                    self.save_checkpoint("best")
        self.save_checkpoint()
        try:
            self.plot()
        except Exception as exc:  # a plot must never kill a run
            warnings.warn(f"could not draw the loss plot: {exc}", RuntimeWarning, stacklevel=2)
