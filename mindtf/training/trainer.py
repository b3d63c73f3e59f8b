"""The training loop: :class:`Trainer` runs the compiled step with everything a real run needs.

::

    train_batches.next() ─> TrainStep (compiled) ─> every log_interval: metrics.jsonl, progress line
                                                 └> every eval_interval: evaluate (whole val set),
                                                    checkpoint (best, step_N, latest), loss.png
    until max_steps or time_budget ─> average_last: checkpoints/averaged (mean of the last N)

A warmup+cosine or Noam schedule, evaluation over the *whole* validation set, checkpoints with exact
resume (weights, optimiser moments, step, data order and RNG states), keep-best / keep-last-N, a
progress bar on a terminal (plain lines in a log file), a JSONL metrics log and a loss /
learning-rate plot. The Trainer knows no model class: it calls the model's own
``save_pretrained`` / ``load_state_dict``. With ``TrainConfig.time_budget`` the loop ends at the
budget with the learning-rate decay planned to end there (:mod:`mindtf.training.budget`; the
time spent goes into each checkpoint, so a resumed run keeps it).

Ctrl-C (SIGINT) or SIGTERM during :meth:`Trainer.fit`, in GRAPH_MODE and PyNative alike::

    signal ──> flag (mindtf.runtime.stop_signals) ──> the step running finishes (an evaluation is
    abandoned) ──> checkpoint step_N (latest) ──> raise mindtf.errors.Interrupted
    second signal ──> KeyboardInterrupt at once; the last complete checkpoint stays as it was

:meth:`Trainer.resume` then continues with the same losses as a run that was never stopped.

In a data-parallel run (:mod:`mindtf.distributed`, started by msrun) every worker runs a Trainer:
``train_batches`` gives the *global* batch and each worker keeps its rows
(:func:`~mindtf.distributed.shard_rows`), the step averages the gradients over the workers,
evaluation is shared out, and only rank 0 writes checkpoints, ``metrics.jsonl`` and the plot.
"""
from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn

from mindtf.distributed import all_reduce_sums, shard_rows, world
from mindtf.errors import CheckpointError, Interrupted, MindtfError
from mindtf.fileio import file_digest
from mindtf.plotting import plot_training
from mindtf.progress import progress
from mindtf.runtime import StopRequest, execution_mode, stop_signals
from mindtf.training.checkpoints import (CHECKPOINTS, TRAINER_STATE, check_run_folder,
                                         check_same_model, keep_metrics_until, mark_latest,
                                         prune_checkpoints, read_trainer_state,
                                         restore_rng_states, resume_checkpoint, rng_states,
                                         write_dir_atomically, write_json)
from mindtf.training.amp import set_compute_dtype
from mindtf.training.averaging import average_last
from mindtf.training.budget import TimeBudget, format_duration
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
            :class:`~mindtf.data.batching.EpochBatches`); with N data-parallel workers each
            batch holds N x ``batch_size`` rows, of which this worker trains on its share.
        eval_batches: a callable returning an iterable over the validation batches (all of them).
        tokens_per_batch: counts the tokens of a batch for the tokens/s figure.
        on_checkpoint: called with each checkpoint directory after it is written (e.g. to save
            the tokenizer next to the weights).
        tokenizer_files: names of files ``on_checkpoint`` writes that decide how text becomes ids
            (``"tokenizer.json"``, vocabularies): their sha256 go into ``trainer.json``, so that
            :meth:`resume` refuses a run whose data now give another tokenizer and
            :func:`~mindtf.training.checkpoints.check_tokenizer_files` a swapped file.
        clock: seconds as a float for the time budget and the timings (default
            :func:`time.monotonic`; a test passes a fake clock).
    """

    def __init__(self, model: nn.Cell, net_with_loss: nn.Cell, config: TrainConfig,
                 train_batches, eval_batches: Optional[Callable[[], Iterable]] = None,
                 tokens_per_batch: Optional[Callable[[Tuple[np.ndarray, ...]], int]] = None,
                 on_checkpoint: Optional[Callable[[Path], None]] = None,
                 tokenizer_files: Sequence[str] = (),
                 clock: Callable[[], float] = time.monotonic):
        self.model, self.config, self.clock = model, config, clock
        self.out_dir = check_run_folder(config.out_dir)
        self.tokenizer_files = tuple(tokenizer_files)
        self.train_batches, self.eval_batches = train_batches, eval_batches
        self.tokens_per_batch = tokens_per_batch or (lambda b: int(np.prod(b[-1].shape)))
        self.on_checkpoint = on_checkpoint
        self.world = world()  # World(0, 1) unless msrun started this process as a worker
        # the execution mode is applied around each call (train_one_step, evaluate, fit) and
        # restored afterwards, so a Trainer never leaves the process in another mode
        self.step_cell = build_train_step(model, net_with_loss, config)
        self.optimizer = self.step_cell.optimizer
        self.eval_cell = EvalStep(net_with_loss)
        self.schedule = config.schedule_fn(getattr(model, "hidden_size", None))
        agree = None if self.world.size == 1 else (  # workers decide on their mean clock
            lambda v: [x / self.world.size for x in all_reduce_sums(v, self.world)])
        self.budget = TimeBudget(config.time_budget_s, clock, agree=agree)  # time spent, plan
        self.step = 0
        self.best_val = float("inf")
        self.bad_in_a_row = 0
        self.overflows = 0  # fp16 steps skipped because the loss scale was too large
        self.history: List[dict] = []
        self.stop = StopRequest()  # set by Ctrl-C / SIGTERM during fit()
        self.last_saved: Optional[Tuple[int, Path]] = None  # (step, folder) of the last checkpoint

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, name: Optional[str] = None) -> Path:
        """Write a resumable checkpoint to ``out_dir/checkpoints/<name>`` atomically (on rank 0
        only: the other workers of a data-parallel run hold the same state and write nothing)."""
        name = name or f"step_{self.step:07d}"
        if not self.world.is_main:
            self.last_saved = (self.step, self.out_dir / CHECKPOINTS / name)
            return self.out_dir / CHECKPOINTS / name
        trainer_state = {"step": self.step, "best_val": self.best_val,
                         "bad_in_a_row": self.bad_in_a_row,
                         "train_batches": self.train_batches.state_dict(),
                         "rng": rng_states(), "config": self.config.to_dict(),
                         "schedule": self.schedule.describe(), "time": self.budget.state_dict(),
                         "mindspore": ms.__version__, "overflows": self.overflows}
        scaler = self.step_cell.scaler
        if scaler is not None:  # fp16: the loss scale goes on where it was
            trainer_state["loss_scale"] = {"scale": float(scaler.scale.asnumpy()),
                                           "good_steps": int(scaler.good_steps.asnumpy())}

        def write(tmp: Path) -> None:
            self.model.save_pretrained(tmp)
            write_safetensors(self.optimizer.state_dict(), tmp / "optimizer.safetensors")
            if self.on_checkpoint is not None:
                self.on_checkpoint(tmp)
            trainer_state["tokenizer"] = self._tokenizer_digests(tmp)
            write_json(tmp / TRAINER_STATE, trainer_state)

        path = write_dir_atomically(self.out_dir / CHECKPOINTS / name, write)
        mark_latest(self.out_dir, name)
        self.last_saved = (self.step, path)
        prune_checkpoints(self.out_dir, max(self.config.keep_last, self.config.average_last))
        return path

    def _tokenizer_digests(self, folder: Path) -> Dict[str, str]:
        return {n: file_digest(folder / n) for n in self.tokenizer_files if (folder / n).is_file()}

    def resume(self, path: Optional[os.PathLike] = None) -> int:
        """Restore a checkpoint (default: the run's latest); returns its step.

        Everything is checked before anything is loaded: ``trainer.json``, the tokenizer the
        data give now against the one recorded, and the model's config against the
        checkpoint's ``config.json`` (a :class:`~mindtf.errors.CheckpointError` names the fields
        that differ). Nothing is written."""
        path = resume_checkpoint(self.out_dir) if path is None else Path(path)
        state = read_trainer_state(path)
        recorded = state.get("tokenizer")
        self._check_same_tokenizer(path, recorded if isinstance(recorded, dict) else {})
        check_same_model(self.model, path)
        self.model.load_state_dict(read_state(path / "model.safetensors"))
        self.optimizer.load_state_dict(read_state(path / "optimizer.safetensors"))
        self.step = int(state["step"])
        self.best_val = float(state["best_val"])
        self.bad_in_a_row = int(state.get("bad_in_a_row", 0))
        self.overflows = int(state.get("overflows", 0))
        scaler, saved_scale = self.step_cell.scaler, state.get("loss_scale")
        if scaler is not None and isinstance(saved_scale, dict):
            scaler.scale.set_data(Tensor(float(saved_scale["scale"]), ms.float32))
            scaler.good_steps.set_data(Tensor(int(saved_scale["good_steps"]), ms.int32))
        self.train_batches.load_state_dict(state["train_batches"])
        restore_rng_states(state["rng"])
        self.budget.load_state_dict(state.get("time") or {})
        return self.step

    def _check_same_tokenizer(self, path: Path, recorded: Dict[str, str]) -> None:
        if not recorded or self.on_checkpoint is None:
            return
        with tempfile.TemporaryDirectory() as tmp:  # what this run would write now
            self.on_checkpoint(Path(tmp))
            now = self._tokenizer_digests(Path(tmp))
        changed = sorted(n for n in recorded if now.get(n) != recorded[n])
        if changed:
            raise CheckpointError(
                f"cannot resume from {path}: the data now give another tokenizer "
                f"({', '.join(changed)} differs from the checkpoint's), so every id would mean "
                "another token. Resume with the run's original data settings, or start a new run "
                "in another train.out_dir.")

    # ------------------------------------------------------------------ logging
    def _log(self, row: dict) -> None:
        self.history.append(row)
        if not self.world.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def plot(self) -> Optional[Path]:
        """Draw ``out_dir/loss.png``: training and validation loss, and the learning rate (rank
        0 only)."""
        if not self.world.is_main:
            return None
        return plot_training(self.out_dir / "metrics.jsonl", self.out_dir / "loss.png")

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> Dict[str, float]:
        """Loss and perplexity on the validation batches (the first ``eval_max_batches``, or
        all; shared out between data-parallel workers); ``{}`` without validation data or when
        Ctrl-C stopped it half-way."""
        if self.eval_batches is None:
            return {}
        batches = itertools.takewhile(lambda _: not self.stop, self.eval_batches())  # Ctrl-C
        with execution_mode(self.config.mode):
            metrics = evaluate(self.eval_cell, batches, self.config.eval_max_batches, self.world)
        return {} if self.stop else metrics

    # ------------------------------------------------------------------ training
    def _micro_batches(self) -> List[Tensor]:
        parts = [self.train_batches.next() for _ in range(self.config.grad_accum)]
        self._last_tokens = sum(self.tokens_per_batch(p) for p in parts)  # of all workers
        parts = [shard_rows(p, self.world) for p in parts]  # this worker's rows
        stacked = [np.stack([p[j] for p in parts]) for j in range(len(parts[0]))]  # (A, B, ...)
        return to_tensors(stacked)

    def train_one_step(self) -> Dict[str, float]:
        """Run one optimiser step and return ``{loss, grad_norm, lr, finite}`` (fp16: and
        ``loss_scale``, the scale after this step, and ``overflow``).

        A non-finite step is skipped. In fp16 a step whose gradients overflowed while the loss
        was finite is the loss scaler's business (it halves the scale; ``overflows`` counts
        them): it warns only once the scale sits at its floor. Any other non-finite step warns,
        and ``max_bad_steps`` of them in a row stop the run. With a time budget the schedule runs
        on the budget's progress (:meth:`~mindtf.training.budget.TimeBudget.progress`)."""
        c, t_start = self.config, self.clock()
        lr = float(self.schedule.at(self.step, self.budget.progress(self.step, c.warmup_steps,
                                                                    c.max_steps)))
        scaler = self.step_cell.scaler
        scale_before = float(scaler.scale.asnumpy()) if scaler is not None else 0.0
        self.step_cell.set_train(True)
        with execution_mode(self.config.mode):
            loss, norm, finite = self.step_cell(Tensor(lr, ms.float32), *self._micro_batches())
        finite = bool(finite.asnumpy())
        out = {"loss": float(loss.asnumpy()), "grad_norm": float(norm.asnumpy()), "lr": lr,
               "finite": finite}
        self.step += 1
        self.budget.record_step(self.clock() - t_start)
        if scaler is not None:
            out["loss_scale"] = float(scaler.scale.asnumpy())
            out["overflow"] = (not finite and np.isfinite(out["loss"])
                               and scale_before > scaler.min_scale)
        if finite:
            self.bad_in_a_row = 0
        elif out.get("overflow"):
            self.overflows += 1
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
        """Train until ``max_steps`` or the ``time_budget``; evaluate, log and checkpoint on the
        way; then average the last ``average_last`` checkpoints into ``checkpoints/averaged``.

        Returns a summary: final ``val_loss``, ``train_loss``, ``steps``, ``seconds`` (this
        call), ``tokens_per_s``, ``eval_max_batches``, ``precision``, ``overflows``, the
        checkpoint directory, ``averaged_checkpoint`` (or None), and the time plan against what
        happened (:meth:`~mindtf.training.budget.TimeBudget.summary`: ``time_budget_s``,
        ``planned_end_s``, ``train_s`` (resumed runs included), ``reserve_s``); with a budget
        ``metrics.jsonl`` gets that as a last row too. Ctrl-C or SIGTERM stops after the current
        step, writes a checkpoint and raises :class:`~mindtf.errors.Interrupted` (see the module
        docstring); :meth:`resume` goes on.
        Training and evaluation run in the step's precision; afterwards the model computes in
        float32 again (decoding with a KV cache needs it).
        """
        c = self.config
        precision = self.step_cell.precision
        if precision != "fp32":
            set_compute_dtype(self.model, precision)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        rows = keep_metrics_until(self.out_dir, self.step, write=self.world.is_main)
        self.history = self.history if rows is None else rows  # a resumed run logs a step once
        bar = progress(total=None if self.budget.active else c.max_steps, initial=self.step,
                       desc="training", unit="step",
                       disable=not (c.progress and self.world.is_main), log_every=c.log_interval)
        t0 = self.clock()
        self._tokens_seen = 0
        self.budget.start()
        try:
            with stop_signals("stopping after this step to write a checkpoint") as self.stop:
                with execution_mode(c.mode):  # once for the loop (the calls inside switch nothing)
                    self._loop(bar, t0)
                if self.stop:
                    bar.close()
                    saved = self.last_saved
                    path = saved[1] if saved and saved[0] == self.step else self.save_checkpoint()
                    raise Interrupted(f"interrupted at step {self.step} of {c.max_steps}: "
                                      f"checkpoint written to {path}", run_dir=str(self.out_dir))
        finally:
            self.budget.stop()
            bar.close()
            self.stop = StopRequest()
            if precision != "fp32":
                set_compute_dtype(self.model, "fp32")
        seconds = self.clock() - t0
        if self.budget.active:
            self._log({"step": self.step, **self.budget.summary()})
            if self.step < c.warmup_steps and self.step < c.max_steps:
                warnings.warn(f"the time budget ({c.time_budget}) ran out in the warmup, at step "
                              f"{self.step} of {c.warmup_steps}: give more time or fewer "
                              "warmup_steps.", RuntimeWarning, stacklevel=2)
        averaged = (average_last(self.out_dir, c.average_last)
                    if c.average_last and self.world.is_main else None)
        last = next((r for r in reversed(self.history) if "loss" in r), {})
        tokens = self._tokens_seen
        val = next((r["val_loss"] for r in reversed(self.history) if "val_loss" in r), None)
        return {"val_loss": val, "train_loss": last.get("loss"), "steps": self.step,
                "seconds": seconds, "tokens_per_s": tokens / max(seconds, 1e-9),
                "eval_max_batches": c.eval_max_batches, "precision": precision,
                "overflows": self.overflows, "checkpoints": str(self.out_dir / "checkpoints"),
                "best_val": self.best_val, **self.budget.summary(),
                "averaged_checkpoint": None if averaged is None else str(averaged)}

    def _loop(self, bar, t0: float) -> None:
        c = self.config
        self._tokens_seen = 0
        window_t, window_tok = self.clock(), 0
        budget = self.budget
        last = self.step >= c.max_steps or budget.exhausted()  # a resumed run may be done
        while not (last or self.stop):
            out = self.train_one_step()
            self._tokens_seen += self._last_tokens
            window_tok += self._last_tokens
            last = self.step >= c.max_steps or budget.exhausted()  # the final eval ends at T
            if self.step % c.log_interval == 0 or last:
                now = self.clock()
                tps = window_tok / max(now - window_t, 1e-9)
                window_t, window_tok = now, 0
                row = {"step": self.step, "loss": out["loss"], "lr": out["lr"],
                       "grad_norm": out["grad_norm"], "tokens_per_s": tps, "elapsed_s": now - t0}
                if "loss_scale" in out:  # fp16
                    row.update(loss_scale=out["loss_scale"], overflows=self.overflows)
                postfix = {}
                if budget.active:
                    row["train_s"] = budget.elapsed()
                    postfix["time"] = (f"{format_duration(row['train_s'])}/"
                                       f"{format_duration(budget.seconds)}")
                self._log(row)
                bar.set_postfix(loss=f"{out['loss']:.4f}", lr=f"{out['lr']:.2e}",
                                tok_s=f"{tps:,.0f}", **postfix)
            bar.update(1)  # after set_postfix: a plain log line shows this step's numbers
            if self.step % c.eval_interval == 0 or last:
                t_eval = self.clock()
                self._eval_and_checkpoint()
                budget.reserve = self.clock() - t_eval  # the final one's expected time

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
