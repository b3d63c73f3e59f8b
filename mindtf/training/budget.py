"""A wall-clock budget for training: stop in time, with the learning-rate decay planned to end
there.

``TrainConfig.time_budget`` (``"10m"``, ``"90s"``, ``"1h30m"`` or a number of seconds) is the wall
time of :meth:`~mindtf.training.trainer.Trainer.fit`'s training loop: compilation of the first
steps, the steps, and the evaluations and checkpoints on the way, the final ones included. What a
recipe does before (data, tokenizer) or after (checkpoint averaging, decoding) is not in it; a
recipe with a total time to meet gives the loop what is left. A resumed run goes on with the time
its checkpoint had spent (``trainer.json`` keeps it)::

    lr
    max ┤  ╭─╮
        │ ╱   ╲___                     warmup: warmup_steps optimiser steps, as without a budget
        │╱        ╲____                decay: on the fraction of the budget spent since the warmup
    min ┤              ╲_______●       ● the last step: the schedule at its end (min_lr)
        └─┬────────────────────┬──┬──> wall time (this run + the earlier runs it resumes)
          t_w                  E  T
    t_w: the warmup's end; T: the budget; E = T - reserve, where reserve is the time the last
    evaluation + checkpoint took (so that the final one ends at T)

Before each step the trainer asks :meth:`TimeBudget.progress`: with ``t`` the time spent, ``d``
the step time expected (median of the last few steps) and ``W`` / ``S`` the warmup / max steps::

    progress = clip(max((t + d - t_w) / (E - t_w), (step + 1 - W) / (S - W)), 0, 1)

i.e. how much of the decay will be done when this step ends, counted in time or in steps,
whichever runs out first: ``max_steps`` stays an upper bound, and either way the last step is
taken at ``progress == 1``, the schedule's final value (cut off mid-decay by neither). A step that
ends at or after ``E`` is the last one; the final evaluation and checkpoint then take it to ``T``.
So the loop ends at the budget, not before, and at most about one step after (one step and one
evaluation when a periodic evaluation falls just before ``E``). Nothing is reserved before the
first evaluation has been timed: keep ``eval_interval`` well below the steps a run will take.

Only schedules with an end (warmup + cosine) follow ``progress``; ``noam`` decays by step without
end and ``constant`` has nothing to plan (the budget still ends the run). The trainer takes a
``clock`` (default :func:`time.monotonic`) that a test replaces with a fake one.
"""
from __future__ import annotations

import math
import numbers
import re
import statistics
import time
from collections import deque
from typing import Any, Callable, Dict, List, Optional

from mindtf.errors import ConfigError

__all__ = ["parse_duration", "format_duration", "TimeBudget"]

_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d*)?)h)?(?:(?P<m>\d+(?:\.\d*)?)m(?:in)?)?"
                       r"(?:(?P<s>\d+(?:\.\d*)?)s)?$")


def parse_duration(value: Any, name: str = "TrainConfig.time_budget") -> Optional[float]:
    """Seconds from ``"90s"``, ``"10m"``, ``"1h30m"``, ``"2.5m"``, ``"600"`` or a number (> 0);
    ``None`` (or ``"none"``) gives ``None``. Anything else is a :class:`~mindtf.errors.ConfigError`
    naming ``name`` and the accepted forms."""
    if value is None:
        return None
    seconds = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text in ("none", "null"):
            return None
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION.match(text)
            if match and text:
                seconds = (3600 * float(match["h"] or 0) + 60 * float(match["m"] or 0)
                           + float(match["s"] or 0))
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{name}={value!r}: give a duration > 0 such as '90s', '10m', '1h30m' "
                          "or a number of seconds (600), or none to train for max_steps.")
    return seconds


def format_duration(seconds: float) -> str:
    """``"9m30s"``, ``"1h05m00s"``, ``"42.5s"``: a duration as people read it."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class TimeBudget:
    """Time spent training (across resumes) and, with ``seconds``, the plan to end at it.

    Args:
        seconds: the budget (``TrainConfig.time_budget_s``); ``None`` only keeps the time.
        clock: seconds as a float, only differences matter (default :func:`time.monotonic`).
        window: the step time expected is the median of this many last steps.
        agree: data parallel: ``values -> their mean over the workers`` (an AllReduce), so
            that every worker takes the same decisions (learning rate, last step) from its own
            clock; ``None`` in a single process.

    :meth:`start` / :meth:`stop` bracket a ``fit``; :meth:`state_dict` goes into a checkpoint.
    """

    def __init__(self, seconds: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic, window: int = 5,
                 agree: Optional[Callable[[List[float]], List[float]]] = None):
        self.seconds, self.clock, self.agree = seconds, clock, agree
        self.spent = 0.0  # seconds of earlier fits (and of the runs a checkpoint resumed)
        self.warmup_end: Optional[float] = None  # time spent when the decay began
        self.reserve = 0.0  # seconds of the last evaluation + checkpoint (the final one's guess)
        self._t0: Optional[float] = None
        self._steps: deque = deque(maxlen=window)

    @property
    def active(self) -> bool:
        return self.seconds is not None

    def start(self) -> None:
        self._t0 = self.clock()

    def stop(self) -> None:
        self.spent, self._t0 = self.elapsed(), None

    def elapsed(self) -> float:
        """Seconds spent: the earlier fits' plus this one's so far."""
        return self.spent + (self.clock() - self._t0 if self._t0 is not None else 0.0)

    def record_step(self, seconds: float) -> None:
        self._steps.append(float(seconds))

    def step_estimate(self) -> float:
        """The time the next step is expected to take (0 before the first)."""
        return statistics.median(self._steps) if self._steps else 0.0

    def planned_end(self, reserve: Optional[float] = None) -> Optional[float]:
        """``E``: when the last step should end, so that the final evaluation ends at the
        budget."""
        reserve = self.reserve if reserve is None else reserve
        return None if self.seconds is None else max(self.seconds - reserve, 0.0)

    def _agreed(self, *values: float) -> List[float]:
        return list(values) if self.agree is None else list(self.agree(list(values)))

    def exhausted(self) -> bool:
        """True once the steps' share of the budget is spent (never without a budget)."""
        if self.seconds is None:
            return False
        now, reserve = self._agreed(self.elapsed(), self.reserve)
        return now >= self.planned_end(reserve)

    def progress(self, step: int, warmup_steps: int, max_steps: int) -> Optional[float]:
        """How much of the decay is done when the step about to run (0-based ``step``) ends, in
        [0, 1] (module docstring); ``None`` without a budget (the schedule then runs on steps).
        The first call after the warmup notes when the decay began."""
        if self.seconds is None:
            return None
        if step < warmup_steps:
            return 0.0
        now, step_s, reserve = self._agreed(self.elapsed(), self.step_estimate(), self.reserve)
        if self.warmup_end is None:
            self.warmup_end = now
        end = self.planned_end(reserve)
        by_time = (1.0 if end <= self.warmup_end
                   else (now + step_s - self.warmup_end) / (end - self.warmup_end))
        by_steps = (step + 1 - warmup_steps) / max(max_steps - warmup_steps, 1)
        return min(max(by_time, by_steps, 0.0), 1.0)

    def summary(self) -> Dict[str, Optional[float]]:
        """``time_budget_s`` (planned), ``planned_end_s`` (E), ``train_s`` (actual) and
        ``reserve_s``: the plan against what happened."""
        return {"time_budget_s": self.seconds, "planned_end_s": self.planned_end(),
                "train_s": self.elapsed(), "reserve_s": self.reserve}

    def state_dict(self) -> Dict[str, Any]:
        return {"elapsed_s": self.elapsed(), "warmup_end_s": self.warmup_end,
                "reserve_s": self.reserve, "step_s": list(self._steps)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Go on from a checkpoint's times (``{}``, from a checkpoint older than budgets: 0)."""
        self.spent = float(state.get("elapsed_s") or 0.0)
        end = state.get("warmup_end_s")
        self.warmup_end = None if end is None else float(end)
        self.reserve = float(state.get("reserve_s") or 0.0)
        self._steps.clear()
        self._steps.extend(float(x) for x in state.get("step_s") or ())
        if self._t0 is not None:
            self._t0 = self.clock()
