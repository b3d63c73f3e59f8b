"""Learning-rate schedules: plain Python, evaluated on the host once per optimiser step.

A schedule is a callable ``sched(step) -> float`` where ``step`` is the 0-based index of the
optimiser step about to be taken. The training loop passes the value into the compiled train step
as a float32 Tensor, so the graph never changes when the learning rate does::

    sched = WarmupCosine(max_lr=6e-4, warmup_steps=100, total_steps=5000, min_lr=6e-5)
    for step in range(5000):
        loss = train_step(x, y, ms.Tensor(sched(step), ms.float32))

Schedules are stateless (the step number is the state), so resuming only needs the step count.
``values(n)`` returns the first ``n`` learning rates as a numpy array, handy for plotting.
``at(step, progress)`` is the rate under a time budget (:mod:`mindtf.training.budget`): the decay
follows ``progress`` in [0, 1] (the share of the decay done) instead of the step count, so it ends
where the budget does; schedules without an end (Noam, Constant) ignore it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["Schedule", "WarmupCosine", "Noam", "Constant"]


class Schedule:
    """Base class: subclasses implement ``__call__(step) -> float`` and ``describe()``."""

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def at(self, step: int, progress: Optional[float] = None) -> float:
        """The rate of ``step``; ``progress`` (None: follow the step count) is ignored here."""
        return self(step)

    def values(self, n: int) -> np.ndarray:
        """Learning rates for steps ``0 .. n-1``, shape ``(n,)``, float64."""
        return np.array([self(s) for s in range(int(n))], dtype=np.float64)


def _check_step(step: int) -> int:
    step = int(step)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return step


@dataclass(frozen=True)
class WarmupCosine(Schedule):
    """Linear warmup, then cosine decay to ``min_lr`` (GPT-2/3, nanoGPT).

    With ``W = warmup_steps`` and ``S = total_steps``::

        lr(s) = max_lr * (s + 1) / W                                  for s < W
        lr(s) = min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * r))  for W <= s < S,
                where r = (s - W) / (S - W)
        lr(s) = min_lr                                                for s >= S

    The ``s + 1`` makes step 0 train with a small non-zero rate instead of 0. ``W = 0`` skips
    the warmup. ``at(s, progress)`` takes ``r = progress`` after the warmup (a time budget
    plans it), so ``progress = 1`` is exactly ``min_lr``.
    """

    max_lr: float
    warmup_steps: int
    total_steps: int
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or self.total_steps < self.warmup_steps:
            raise ValueError("need 0 <= warmup_steps <= total_steps, got "
                             f"warmup_steps={self.warmup_steps}, total_steps={self.total_steps}")
        if self.max_lr < 0 or self.min_lr < 0:
            raise ValueError(f"learning rates must be >= 0, got max_lr={self.max_lr}, "
                             f"min_lr={self.min_lr}")

    def __call__(self, step: int) -> float:
        s = _check_step(step)
        if s < self.warmup_steps:
            return self.max_lr * (s + 1) / self.warmup_steps
        if s >= self.total_steps:
            return float(self.min_lr)
        return self._decay((s - self.warmup_steps) / (self.total_steps - self.warmup_steps))

    def at(self, step: int, progress: Optional[float] = None) -> float:
        s = _check_step(step)
        if progress is None or s < self.warmup_steps:
            return self(s)
        return self._decay(min(max(float(progress), 0.0), 1.0))

    def _decay(self, ratio: float) -> float:  # ratio 0 -> max_lr, 1 -> min_lr (cos(pi) = -1)
        return self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + math.cos(math.pi * ratio))

    def describe(self) -> str:
        return (f"WarmupCosine: linear warmup 0 -> {self.max_lr:g} over {self.warmup_steps} steps, "
                f"cosine decay to {self.min_lr:g} at step {self.total_steps}, then constant")


@dataclass(frozen=True)
class Noam(Schedule):
    """The schedule of "Attention Is All You Need" (section 5.3)::

        lr(s) = factor * d_model^-0.5 * min((s + 1)^-0.5, (s + 1) * warmup_steps^-1.5)

    It rises linearly for ``warmup_steps`` steps, peaks at
    ``factor * (d_model * warmup_steps)^-0.5`` and then decays like ``1 / sqrt(step)``.
    """

    d_model: int
    warmup_steps: int
    factor: float = 1.0

    def __post_init__(self) -> None:
        if self.d_model <= 0 or self.warmup_steps <= 0:
            raise ValueError(f"d_model and warmup_steps must be > 0, got d_model={self.d_model}, "
                             f"warmup_steps={self.warmup_steps}")

    def __call__(self, step: int) -> float:
        n = _check_step(step) + 1
        return self.factor * self.d_model ** -0.5 * min(n ** -0.5, n * self.warmup_steps ** -1.5)

    def describe(self) -> str:
        peak = self.factor * (self.d_model * self.warmup_steps) ** -0.5
        return (f"Noam: d_model={self.d_model}, warmup {self.warmup_steps} steps, "
                f"factor {self.factor:g}; peak {peak:.3g} then ~1/sqrt(step)")


@dataclass(frozen=True)
class Constant(Schedule):
    """``lr(s) = lr`` for every step."""

    lr: float

    def __call__(self, step: int) -> float:
        _check_step(step)
        return float(self.lr)

    def describe(self) -> str:
        return f"Constant: {self.lr:g}"
