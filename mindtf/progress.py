"""Progress that reads well both in a terminal and in a log file.

A tqdm bar redraws itself with carriage returns, which is right in a terminal and wrong in a log
(CI, ``nohup``, ``> run.log``, a saved notebook): there every frame stays, and a quickstart log
grows to hundreds of kB of bar frames. :func:`progress` looks at where it writes::

    progress(total, desc, unit, log_every)          MINDTF_PROGRESS=bar|plain|off overrides
        |
        +-- file is a terminal ----------> "bar": a tqdm bar, redrawn in place
        +-- not a terminal --------------> "plain": one line per log_every units, and one at close
        |      training: step 200/2000 (10%) loss=2.31 lr=1.0e-03 tok_s=5,400 elapsed 0:01:02 ...
        +-- disable=True or "off" -------> nothing

``file`` defaults to ``sys.stderr``, which is where tqdm writes by default, so redirecting
standard output alone (``python -m mindtf quickstart > out.txt``) keeps the bar on the terminal.
Messages that must not tear a bar (an evaluation result, a retry notice) go through
:func:`write` or ``Progress.write``; they are printed in every mode, ``off`` included.
"""
from __future__ import annotations

import datetime
import math
import numbers
import os
import sys
import time
from typing import Any, Optional, TextIO

from mindtf.errors import ConfigError

__all__ = ["ENV_VAR", "MODES", "Progress", "progress", "progress_mode", "format_value", "write"]

#: the environment variable that overrides the terminal detection
ENV_VAR = "MINDTF_PROGRESS"
MODES = ("bar", "plain", "off")
#: without log_every or a total, "plain" prints at most one line per this many seconds
PLAIN_SECONDS = 30.0


def progress_mode(file: Optional[TextIO] = None, disable: bool = False) -> str:
    """``"bar"``, ``"plain"`` or ``"off"``: ``$MINDTF_PROGRESS`` if set, else ``"bar"`` when
    ``file`` (default ``sys.stderr``) is a terminal and ``"plain"`` when it is not."""
    if disable:
        return "off"
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced:
        if forced not in MODES:
            raise ConfigError(f"{ENV_VAR}={forced!r}: choose 'plain', 'bar' or 'off' (or unset "
                              "it to show a bar on a terminal and plain lines elsewhere).")
        return forced
    file = sys.stderr if file is None else file
    try:
        return "bar" if file.isatty() else "plain"
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return "plain"


def format_value(value: Any) -> str:
    """A postfix value as a log shows it: ``2.31``, ``1.0e-03``, ``5,400``; text unchanged."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    v = float(value)
    if not math.isfinite(v) or v == 0:
        return str(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) < 0.01:
        return f"{v:.1e}"
    return f"{v:.3g}"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # not reached


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))  # 0:01:02


def write(msg: str, file: Optional[TextIO] = None) -> None:
    """Print ``msg`` as a line of its own without tearing a tqdm bar that may be on screen."""
    file = sys.stderr if file is None else file
    if "tqdm" in sys.modules:  # a bar may be showing: let tqdm clear and redraw it
        from tqdm import tqdm

        tqdm.write(msg, file=file)
    else:
        print(msg, file=file, flush=True)


class Progress:
    """What :func:`progress` returns: ``update``, ``set_postfix``, ``write``, ``close``, and a
    context manager that closes it. ``mode`` says which of ``bar``/``plain``/``off`` it is.

    In ``plain`` mode a line is printed by the :meth:`update` that reaches a multiple of
    ``log_every``; call :meth:`set_postfix` *before* that update so the line carries the
    step's values."""

    def __init__(self, total: Optional[float] = None, desc: str = "", unit: str = "it",
                 disable: bool = False, log_every: Optional[float] = None,
                 file: Optional[TextIO] = None, initial: float = 0, leave: bool = True) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.file = file
        self.n = self.logged = self.initial = initial
        self.mode = progress_mode(file, disable)
        if log_every is not None and log_every <= 0:
            raise ConfigError(f"log_every={log_every}: give a positive interval, or None for "
                              "a line per tenth of the job.")
        if log_every is None and total and total > initial:  # ten lines per job
            log_every = math.ceil((total - initial) / 10)
        self.log_every = log_every
        self.postfix: dict = {}
        self.start = self.last_line = time.monotonic()
        self.lines = 0
        self.closed = False
        self.bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            scale = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
            self.bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave,
                            file=sys.stderr if file is None else file, dynamic_ncols=True,
                            **scale)

    # ------------------------------------------------------------------ the interface
    def update(self, n: float = 1) -> None:
        """``n`` more units done."""
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.mode == "plain" and self._due():
            self._line()

    def set_postfix(self, **kv: Any) -> None:
        """Values shown after the count (``loss=2.31``); replaces the previous ones."""
        self.postfix = {k: format_value(v) for k, v in kv.items()}
        if self.bar is not None:
            self.bar.set_postfix(self.postfix, refresh=False)

    def write(self, msg: str) -> None:
        """Print a message line (in every mode) without tearing the bar."""
        write(msg, self.file)

    def close(self) -> None:
        """End: the bar is closed; in ``plain`` mode a last line unless the last one was here."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "plain" and (self.n != self.logged or not self.lines):
            self._line()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ plain lines
    def _due(self) -> bool:
        if self.log_every:
            return self.n // self.log_every > self.logged // self.log_every
        return time.monotonic() - self.last_line >= PLAIN_SECONDS

    def line(self) -> str:
        """The current state as one line, e.g.
        ``training: step 200/2000 (10%) loss=2.31 elapsed 0:01:02 eta 0:09:18``."""
        if self.unit == "B":
            count = _size(self.n) + ("" if self.total is None else f"/{_size(self.total)}")
        else:
            count = _number(self.n) + ("" if self.total is None else f"/{_number(self.total)}")
            count = count if self.unit == "it" else f"{self.unit} {count}"
        parts = [f"{self.desc}: {count}" if self.desc else count]
        if self.total:
            parts.append(f"({100 * self.n / self.total:.0f}%)")
        parts += [f"{k}={v}" for k, v in self.postfix.items()]
        elapsed = time.monotonic() - self.start
        parts.append(f"elapsed {_clock(elapsed)}")
        done = self.n - self.initial
        if self.total and 0 < done and self.n < self.total:
            parts.append(f"eta {_clock(elapsed / done * (self.total - self.n))}")
        return " ".join(parts)

    def _line(self) -> None:
        print(self.line(), file=sys.stderr if self.file is None else self.file, flush=True)
        self.logged, self.last_line = self.n, time.monotonic()
        self.lines += 1


def progress(total: Optional[float] = None, desc: str = "", unit: str = "it",
             disable: bool = False, log_every: Optional[float] = None,
             file: Optional[TextIO] = None, *, initial: float = 0,
             leave: bool = True) -> Progress:
    """Progress of a job of ``total`` units (None: unknown), shown as :mod:`this module <
    mindtf.progress>` describes: a tqdm bar on a terminal, plain lines elsewhere.

    Args:
        total: units of the whole job (steps, bytes); None when unknown.
        desc: what is running (``"training"``, a file name); starts each line.
        unit: ``"step"``, ``"B"`` (bytes: shown as KiB/MiB), ...; ``"it"`` is not named.
        disable: show nothing (``mode == "off"``) whatever ``$MINDTF_PROGRESS`` says.
        log_every: plain mode: a line each time the count passes a multiple of this (default:
            a tenth of the job; with no total, one line per 30 s at most).
        file: where to write (default ``sys.stderr``, as tqdm); its ``isatty()`` picks the mode.
        initial: the count to start from (a resumed run's step).
        leave: bar mode: keep the finished bar on screen.
    """
    return Progress(total, desc, unit, disable, log_every, file, initial=initial, leave=leave)
