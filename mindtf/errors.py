"""Exceptions mindtf raises, and the checks that raise them. Each message names the problem and
the fix.

Every number a user gives (a config field, a command-line option, a sampling setting) is checked
by :func:`check_range` or :func:`check_choice` where it is declared, so all such errors read
alike::

    GPTConfig.n_layer=-1: must be an integer >= 1.
    TrainConfig.lr=nan: must be a finite number > 0.
    top_p=1.5: must be a finite number in (0, 1]. 1 keeps every token (no filtering).
    TrainConfig.schedule='linear': choose one of 'cosine', 'noam', 'constant'.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence

__all__ = ["MindtfError", "ConfigError", "InputError", "CheckpointError", "DataError",
           "Interrupted", "check_range", "check_choice"]


class MindtfError(Exception):
    """Base class of every error mindtf raises on purpose."""


class ConfigError(MindtfError, ValueError):
    """A model or training configuration that cannot work (e.g. d_model not divisible by heads)."""


class InputError(MindtfError, ValueError):
    """Bad input to a model or function: a token id out of range, a too-long sequence, a
    bad mask."""


class CheckpointError(MindtfError):
    """A checkpoint that does not match the model (missing, unexpected or mis-shaped keys)."""


class DataError(MindtfError):
    """A dataset that could not be fetched, verified or read."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped a job at a safe point.

    The message says what was kept (e.g. the checkpoint written); ``run_dir`` is the run folder
    a training run can be resumed from (``python -m mindtf`` then prints the ``--resume``
    command) and ``partial`` what a decoding job had produced. A ``KeyboardInterrupt``, so code
    that stops on Ctrl-C stops on it too; ``python -m mindtf`` exits with code 130."""

    def __init__(self, message: str = "interrupted", run_dir: Optional[str] = None,
                 partial: Any = None):
        super().__init__(message)
        self.run_dir, self.partial = run_dir, partial


def _number(x: Any) -> str:
    return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:g}"


def check_range(name: str, value: Any, lo: Optional[float] = None, hi: Optional[float] = None,
                *, lo_open: bool = False, hi_open: bool = False, integer: bool = False,
                optional: bool = False, fix: str = "", error: type = ConfigError) -> None:
    """Raise ``error`` (default :class:`ConfigError`) unless ``value`` is a finite number
    (an integer with ``integer``) within ``[lo, hi]`` (an end is left out with ``lo_open`` /
    ``hi_open``; ``None`` means unbounded). ``optional`` also accepts ``None``.

    The message names ``name`` (e.g. ``"GPTConfig.n_layer"``), the value, what is allowed and
    ``fix``: ``GPTConfig.dropout=1.5: must be a finite number in [0, 1).``"""
    if optional and value is None:
        return
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (math.isfinite(v)
              and (lo is None or (v > lo if lo_open else v >= lo))
              and (hi is None or (v < hi if hi_open else v <= hi)))
    if ok:
        return
    what = "an integer" if integer else "a finite number"
    if lo is not None and hi is not None:
        what += (f" in {'(' if lo_open else '['}{_number(lo)}, {_number(hi)}"
                 f"{')' if hi_open else ']'}")
    elif lo is not None:
        what += f" {'>' if lo_open else '>='} {_number(lo)}"
    elif hi is not None:
        what += f" {'<' if hi_open else '<='} {_number(hi)}"
    if optional:
        what += " (or none)"
    raise error(f"{name}={value!r}: must be {what}." + (f" {fix}" if fix else ""))


def check_choice(name: str, value: Any, choices: Sequence[Any], fix: str = "",
                 error: type = ConfigError) -> None:
    """Raise ``error`` unless ``value`` is one of ``choices``:
    ``TrainConfig.mode='fast': choose one of 'graph', 'pynative'.``"""
    if any(type(value) is type(c) and value == c for c in choices):
        return
    raise error(f"{name}={value!r}: choose one of {', '.join(repr(c) for c in choices)}."
                + (f" {fix}" if fix else ""))
