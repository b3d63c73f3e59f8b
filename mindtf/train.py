"""Training: one compiled step (loss + gradients + AdamW update) and the loop around it.

The step is an ``nn.Cell``. In GRAPH_MODE MindSpore compiles its ``construct`` -- forward,
backward, clipping, NaN guard and optimiser update -- into one graph, which removes the per-op
Python overhead that dominates small models on a CPU. In PyNative mode the *same* cell runs op by
op, so you can step through it in a debugger or a notebook. The mode is a switch
(``TrainConfig.mode``), not a second copy of the code.

::

    lr (host schedule) ─┐
    batch (A, B, T) ────┴─> TrainStep: for each of A micro-batches: loss, grads = value_and_grad
                            grads = sum / A; clip by global norm; if finite: AdamW(grads, lr)
                            -> (loss, grad_norm, finite)

:class:`Trainer` adds what a real run needs: a warmup+cosine or Noam schedule, evaluation over the
*whole* validation set, checkpoints with exact resume (weights, optimiser moments, step, data
order and RNG states), keep-best / keep-last-N, a checkpoint on Ctrl-C, a tqdm bar, a JSONL metrics
log and a loss / learning-rate plot.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from .errors import ConfigError, MindtfError
from .losses import cross_entropy
from .optim import AdamW, clip_by_global_norm, decay_mask_for
from .runtime import _mode
from .schedules import Constant, Noam, WarmupCosine

__all__ = ["TrainConfig", "LMLossCell", "Seq2SeqLossCell", "TrainStep", "EvalStep", "Trainer",
           "build_train_step",
           "RandomLMBatches", "EpochBatches", "TrainingDiverged", "evaluate"]


class TrainingDiverged(MindtfError):
    """Too many optimiser steps in a row had a non-finite loss or gradient."""


@dataclass
class TrainConfig:
    """Everything about *how* to train (the model has its own config)."""

    max_steps: int = 2000
    batch_size: int = 12
    grad_accum: int = 1  # micro-batches per optimiser step
    lr: float = 1e-3  # peak learning rate (cosine) / ignored by noam (uses noam_factor)
    min_lr: float = 1e-4
    warmup_steps: int = 100
    schedule: str = "cosine"  # "cosine" | "noam" | "constant"
    noam_factor: float = 1.0
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global norm; 0 disables
    label_smoothing: float = 0.0
    mode: str = "graph"  # "graph" (compiled, fast) | "pynative" (op by op, for learning)
    precision: str = "fp32"  # "fp32" | "fp16" | "bf16" (fp32 on CPU)
    eval_interval: int = 250
    eval_max_batches: Optional[int] = None  # None: the whole validation set
    log_interval: int = 10
    keep_last: int = 2  # step checkpoints kept (the best one is kept separately)
    keep_best: bool = True
    max_bad_steps: int = 5  # stop after this many non-finite steps in a row
    seed: int = 0
    out_dir: str = "runs/run"
    progress: bool = True

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
        from .config import dataclass_from_dict

        return dataclass_from_dict(cls, d)


# --------------------------------------------------------------------------- loss cells
class LMLossCell(nn.Cell):
    """Next-token loss of a language model: ``(x (B, T), y (B, T)) -> mean CE``.

    Targets equal to ``ignore_index`` (e.g. padding) are skipped. :meth:`sums` returns
    ``(sum of token losses, number of tokens)`` for exact averages over a whole dataset.
    """

    def __init__(self, model: nn.Cell, label_smoothing: float = 0.0, ignore_index: int = -100):
        super().__init__(auto_prefix=False)
        self.model = model
        self.label_smoothing, self.ignore_index = float(label_smoothing), int(ignore_index)

    def construct(self, x: Tensor, y: Tensor) -> Tensor:
        logits = self.model(x)  # (B, T, V)
        return cross_entropy(logits, y, self.ignore_index, self.label_smoothing)

    def sums(self, x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:
        logits = self.model(x)
        total = cross_entropy(logits, y, self.ignore_index, 0.0, "sum")
        count = (y != self.ignore_index).astype(ms.float32).sum()
        return total, count


class Seq2SeqLossCell(nn.Cell):
    """Translation loss: ``(src (B, S), tgt_in (B, T), tgt_out (B, T)) -> mean CE`` over the
    non-padding target tokens (label smoothing as in the paper, 0.1)."""

    def __init__(self, model: nn.Cell, label_smoothing: float = 0.1, pad_id: Optional[int] = None):
        super().__init__(auto_prefix=False)
        self.model = model
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = int(model.config.pad_id if pad_id is None else pad_id)

    def construct(self, src: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> Tensor:
        logits = self.model(src, tgt_in)  # (B, T, V)
        return cross_entropy(logits, tgt_out, self.ignore_index, self.label_smoothing)

    def sums(self, src: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> Tuple[Tensor, Tensor]:
        logits = self.model(src, tgt_in)
        total = cross_entropy(logits, tgt_out, self.ignore_index, 0.0, "sum")
        count = (tgt_out != self.ignore_index).astype(ms.float32).sum()
        return total, count


# --------------------------------------------------------------------------- compiled steps
class TrainStep(nn.Cell):
    """One optimiser step: gradients of ``A`` micro-batches, averaged, clipped, NaN-guarded, applied.

    ``construct(lr, *batch)``: ``lr`` is a float32 scalar Tensor from the host schedule; each
    batch tensor has a leading micro-batch axis ``(A, B, ...)``. Dividing the summed gradients
    by ``A`` is the same as dividing each micro-batch loss by ``A``, so 4 micro-batches of 8 give
    the gradient of one batch of 32. Returns ``(mean loss, global grad norm, finite)``; when not
    finite the update is skipped (AdamW's moments and step are untouched).
    """

    def __init__(self, net_with_loss: nn.Cell, optimizer: AdamW, grad_clip: float = 1.0,
                 accum: int = 1, loss_scaler=None):
        super().__init__(auto_prefix=False)
        self.net = net_with_loss
        self.optimizer = optimizer
        self.weights = optimizer.params
        self.accum = int(accum)
        self.grad_clip = float(grad_clip) if grad_clip else 0.0
        self.scaler = loss_scaler
        self.grad_fn = ms.value_and_grad(self._scaled_loss, None, self.weights)

    def _scaled_loss(self, *batch):
        loss = self.net(*batch)
        if self.scaler is not None:
            loss = self.scaler.scale_loss(loss)
        return loss

    def construct(self, lr: Tensor, *batch):
        loss, grads = self.grad_fn(*[b[0] for b in batch])
        for i in range(1, self.accum):  # unrolled at compile time
            loss_i, grads_i = self.grad_fn(*[b[i] for b in batch])
            loss = loss + loss_i
            grads = tuple(g + gi for g, gi in zip(grads, grads_i))
        if self.accum > 1:
            loss = loss / self.accum
            grads = tuple(g / self.accum for g in grads)
        if self.scaler is not None:
            loss = self.scaler.unscale((loss,))[0]
            grads = self.scaler.unscale(grads)
        # the global norm is finite exactly when every gradient element is
        grads, norm = clip_by_global_norm(grads, self.grad_clip)
        finite = ops.logical_and(ops.isfinite(norm), ops.isfinite(loss))
        if self.scaler is not None:
            self.scaler.update(finite)
        if finite:
            self.optimizer(grads, lr)
        return loss, norm, finite


def build_train_step(model: nn.Cell, net_with_loss: nn.Cell, config: TrainConfig) -> TrainStep:
    """The standard step for ``config``: AdamW over ``model``'s trainable parameters (no decay on
    biases, norms and embeddings), clipping, accumulation and, for fp16 on GPU/Ascend, dynamic
    loss scaling. The optimiser is ``step.optimizer``."""
    params = model.trainable_params()
    optimizer = AdamW(params, lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps,
                      weight_decay=config.weight_decay,
                      decay_mask=decay_mask_for([(p.name, p) for p in params]))
    scaler = None
    if config.precision == "fp16" and ms.get_context("device_target") != "CPU":
        from .amp import DynamicLossScaler

        scaler = DynamicLossScaler()
    return TrainStep(net_with_loss, optimizer, config.grad_clip, config.grad_accum, scaler)


class EvalStep(nn.Cell):
    """``(*batch) -> (sum of token losses, token count)`` with the model in eval mode."""

    def __init__(self, net_with_loss: nn.Cell):
        super().__init__(auto_prefix=False)
        self.net = net_with_loss

    def construct(self, *batch):
        return self.net.sums(*batch)


# --------------------------------------------------------------------------- batch sources
class RandomLMBatches:
    """nanoGPT-style random windows of a token stream: each call returns ``(x, y)`` of shape
    ``(B, T)`` with ``y`` the next tokens. The generator's state is checkpointed, so a resumed
    run sees exactly the batches it would have seen."""

    def __init__(self, data: np.ndarray, block_size: int, batch_size: int, seed: int = 0):
        from .batching import random_lm_batch

        self._fn = random_lm_batch
        self.data, self.block_size, self.batch_size = data, block_size, batch_size
        self.rng = np.random.default_rng(seed)

    def next(self) -> Tuple[np.ndarray, ...]:
        return self._fn(self.data, self.block_size, self.batch_size, self.rng)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


class EpochBatches:
    """Walks a list of pre-built batches epoch after epoch (re-built per epoch by
    ``make_epoch(epoch)``, e.g. a seeded bucketed shuffle); the position is checkpointed."""

    def __init__(self, make_epoch: Callable[[int], List[Tuple[np.ndarray, ...]]]):
        self.make_epoch = make_epoch
        self.epoch, self.pos = 0, 0
        self._batches = None

    def next(self) -> Tuple[np.ndarray, ...]:
        if self._batches is None:
            self._batches = self.make_epoch(self.epoch)
        if self.pos >= len(self._batches):
            self.epoch, self.pos = self.epoch + 1, 0
            self._batches = self.make_epoch(self.epoch)
        batch = self._batches[self.pos]
        self.pos += 1
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos, self._batches = int(state["epoch"]), int(state["pos"]), None


def _to_tensors(arrays: Sequence[np.ndarray]) -> List[Tensor]:
    return [Tensor(np.ascontiguousarray(a)) for a in arrays]


def evaluate(eval_step: EvalStep, batches: Iterable[Tuple[np.ndarray, ...]],
             max_batches: Optional[int] = None) -> Dict[str, float]:
    """Mean token loss and perplexity over ``batches`` (all of them unless ``max_batches``)."""
    total, count = 0.0, 0.0
    eval_step.set_train(False)
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        s, n = eval_step(*_to_tensors(batch))
        total += float(s.asnumpy())
        count += float(n.asnumpy())
    loss = total / max(count, 1.0)
    return {"loss": loss, "ppl": float(math.exp(min(loss, 700.0))), "tokens": count}


# --------------------------------------------------------------------------- the loop
class Trainer:
    """Runs training with checkpoints, evaluation, logging and a plot.

    Args:
        model: the network (``GPT`` / ``Transformer``); its parameters are optimised.
        net_with_loss: e.g. :class:`LMLossCell` or :class:`Seq2SeqLossCell` around ``model``.
        config: a :class:`TrainConfig`.
        train_batches: an object with ``next() -> tuple of numpy arrays`` and
            ``state_dict()/load_state_dict()`` (:class:`RandomLMBatches`, :class:`EpochBatches`).
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
        d_model = getattr(getattr(model, "config", None), "d_model", None) or getattr(
            getattr(model, "config", None), "n_embd", None)
        self.schedule = config.schedule_fn(d_model)
        self.step = 0
        self.best_val = float("inf")
        self.bad_in_a_row = 0
        self.history: List[dict] = []

    # ------------------------------------------------------------------ checkpoints
    def _rng_states(self) -> dict:
        return {"python": _py_state_to_json(random.getstate()),
                "numpy": _np_state_to_json(np.random.get_state()),
                "mindspore": ms.get_rng_state().asnumpy().tolist()
                if hasattr(ms, "get_rng_state") else None}

    def save_checkpoint(self, name: Optional[str] = None) -> Path:
        """Write a resumable checkpoint to ``out_dir/checkpoints/<name>`` atomically."""
        from .checkpoint import _write_json, save_model, save_state, write_dir_atomically

        name = name or f"step_{self.step:07d}"
        trainer_state = {"step": self.step, "best_val": self.best_val,
                         "bad_in_a_row": self.bad_in_a_row,
                         "train_batches": self.train_batches.state_dict(),
                         "rng": self._rng_states(), "config": self.config.to_dict(),
                         "schedule": self.schedule.describe(),
                         "mindspore": ms.__version__}

        def write(tmp: Path) -> None:
            save_model(self.model, tmp)
            save_state(self.optimizer.state_dict(), tmp / "optimizer.safetensors")
            _write_json(tmp / "trainer.json", trainer_state)
            if self.on_checkpoint is not None:
                self.on_checkpoint(tmp)

        path = write_dir_atomically(self.out_dir / "checkpoints" / name, write)
        (self.out_dir / "checkpoints" / "latest.tmp").write_text(name)
        os.replace(self.out_dir / "checkpoints" / "latest.tmp", self.out_dir / "checkpoints" / "latest")
        self._prune()
        return path

    def _prune(self) -> None:
        ckdir = self.out_dir / "checkpoints"
        steps = sorted(p for p in ckdir.glob("step_*") if p.is_dir())
        for old in steps[:-self.config.keep_last] if self.config.keep_last > 0 else steps:
            shutil.rmtree(old, ignore_errors=True)

    def resume(self, path: Optional[os.PathLike] = None) -> int:
        """Restore a checkpoint (default: ``out_dir/checkpoints/latest``); returns its step."""
        from .checkpoint import load_params, load_state

        if path is None:
            latest = self.out_dir / "checkpoints" / "latest"
            if not latest.is_file():
                raise MindtfError(f"nothing to resume: {latest} does not exist.")
            path = self.out_dir / "checkpoints" / latest.read_text().strip()
        path = Path(path)
        state = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
        weights = load_state(path / "model.safetensors")
        from .gpt import GPT

        if isinstance(self.model, GPT):
            from .hf import load_gpt_state

            load_gpt_state(self.model, weights)
        else:
            load_params(self.model, weights)
        self.optimizer.load_state_dict(load_state(path / "optimizer.safetensors"))
        self.step = int(state["step"])
        self.best_val = float(state["best_val"])
        self.bad_in_a_row = int(state.get("bad_in_a_row", 0))
        self.train_batches.load_state_dict(state["train_batches"])
        rng = state["rng"]
        random.setstate(_py_state_from_json(rng["python"]))
        np.random.set_state(_np_state_from_json(rng["numpy"]))
        if rng.get("mindspore") is not None and hasattr(ms, "set_rng_state"):
            ms.set_rng_state(Tensor(np.array(rng["mindspore"], dtype=np.uint8)))
        return self.step

    # ------------------------------------------------------------------ logging
    def _log(self, row: dict) -> None:
        self.history.append(row)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def plot(self) -> Optional[Path]:
        """Draw ``out_dir/loss.png``: training and validation loss, and the learning rate."""
        from .plotting import plot_training

        return plot_training(self.out_dir / "metrics.jsonl", self.out_dir / "loss.png")

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> Dict[str, float]:
        if self.eval_batches is None:
            return {}
        with _mode(self.config.mode):
            return evaluate(self.eval_cell, self.eval_batches(), self.config.eval_max_batches)

    # ------------------------------------------------------------------ training
    def _micro_batches(self) -> List[Tensor]:
        parts = [self.train_batches.next() for _ in range(self.config.grad_accum)]
        stacked = [np.stack([p[j] for p in parts]) for j in range(len(parts[0]))]  # (A, B, ...)
        self._last_tokens = sum(self.tokens_per_batch(p) for p in parts)
        return _to_tensors(stacked)

    def train_one_step(self) -> Dict[str, float]:
        """Run one optimiser step and return ``{loss, grad_norm, lr, finite}``."""
        lr = float(self.schedule(self.step))
        self.step_cell.set_train(True)
        with _mode(self.config.mode):
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
        from tqdm.auto import tqdm

        c = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "train_config.json").write_text(json.dumps(c.to_dict(), indent=2))
        bar = tqdm(total=c.max_steps, initial=self.step, disable=not c.progress,
                   desc="training", unit="step", dynamic_ncols=True)
        t0 = time.perf_counter()
        self._tokens_seen = 0
        try:
            with _mode(c.mode):  # once for the loop (the calls inside then switch nothing)
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
            bar.update(1)
            if self.step % c.log_interval == 0 or self.step == c.max_steps:
                now = time.perf_counter()
                tps = window_tok / max(now - window_t, 1e-9)
                window_t, window_tok = now, 0
                self._log({"step": self.step, "loss": out["loss"], "lr": out["lr"],
                           "grad_norm": out["grad_norm"], "tokens_per_s": tps,
                           "elapsed_s": now - t0})
                bar.set_postfix(loss=f"{out['loss']:.4f}", lr=f"{out['lr']:.2e}",
                                tok_s=f"{tps:,.0f}")
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


# --------------------------------------------------------------------------- RNG state <-> JSON
def _py_state_to_json(state: tuple) -> list:
    return [state[0], list(state[1]), state[2]]


def _py_state_from_json(obj: list) -> tuple:
    return (obj[0], tuple(obj[1]), obj[2])


def _np_state_to_json(state: tuple) -> list:
    return [state[0], state[1].tolist(), int(state[2]), int(state[3]), float(state[4])]


def _np_state_from_json(obj: list) -> tuple:
    return (obj[0], np.array(obj[1], dtype=np.uint32), obj[2], obj[3], obj[4])
