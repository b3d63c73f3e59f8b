"""How long and how much one source may take: a deadline, a minimum progress, a byte limit.

::

    one source (one URL: every try, every redirect, the optional 'download' package)
    |<------------------------- deadline (600 s) ------------------------->|  else abandoned
    |<- stall_seconds ->|<- stall_seconds ->| ...  each brings >= stall_bytes, else abandoned
    every wait for bytes <= min(read timeout, stall_seconds, time left)
    bytes written <= limit = size_limit(the registry's size) or max_bytes when it gives none

A broken rule raises :class:`~mindtf.data.failures.LimitError` and the next source is tried (the
partial file is deleted after too many bytes, kept for a later resume after a deadline or a
stall). Unpacking is capped the same way (:func:`copy_limited`): a member may not unpack to more
than its file's registry size allows.
"""
from __future__ import annotations

import time
from typing import IO, Any, Callable, Optional, Tuple

from mindtf.data.failures import LimitError, TooBigError, TransientError
from mindtf.errors import DataError

DEADLINE = 600.0  # seconds one source may take in all (0: no deadline)
STALL_BYTES = 16384  # a source must deliver at least this many bytes...
STALL_SECONDS = 30.0  # ...in every this many seconds
MAX_BYTES = 1 << 30  # the most one download of unknown size may write
MARGIN = 1 << 20  # a known size may be exceeded by 10% plus this (e.g. CRLF line ends)
_CHUNK = 1 << 20


def size_limit(expected: Optional[int], ceiling: int = MAX_BYTES) -> int:
    """The most bytes a download or an unpacked member may have: ``expected`` plus a margin
    when the registry gives a size, else ``ceiling``."""
    if expected is None:
        return int(ceiling)
    return int(expected) + int(expected) // 10 + MARGIN


def copy_limited(src: IO[bytes], out: IO[bytes], limit: Optional[int], what: str) -> int:
    """Copy ``src`` into ``out`` in chunks, refusing to write more than ``limit`` bytes
    (``None``: no limit); returns the bytes copied. Raises :class:`DataError` past the limit."""
    done = 0
    while True:
        block = src.read(_CHUNK if limit is None else min(_CHUNK, limit + 1 - done))
        if not block:
            return done
        done += len(block)
        if limit is not None and done > limit:
            raise DataError(f"{what} unpacks to more than {limit} bytes, more than it may "
                            "(a zip bomb?); refusing it")
        out.write(block)


def _fmt(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"


class Watch:
    """The clock and the byte count of one source, checked at every read.

    ``timeout(base)`` is how long the next wait for bytes may last (it remembers which bound
    was the tightest, so that a timeout can be explained by :meth:`timed_out`); ``begin()``
    starts a try (its progress window); ``add(n, size)`` counts ``n`` new bytes and the file's
    new ``size``, raising :class:`LimitError` when a rule is broken.
    """

    def __init__(self, *, deadline: float = DEADLINE, stall_bytes: int = STALL_BYTES,
                 stall_seconds: float = STALL_SECONDS, limit: int = MAX_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.deadline = float(deadline) if deadline and deadline > 0 else float("inf")
        self.stall_bytes = int(stall_bytes)
        on = stall_seconds and stall_seconds > 0 and stall_bytes > 0  # else: no stall rule
        self.stall_seconds = float(stall_seconds) if on else float("inf")
        self.limit = int(limit)
        self.start = clock()
        self.got = 0  # bytes received from this source, every try together
        self.mark = (self.start, 0)  # (time, got) at the start of the progress window
        self.bound = "read"  # which bound set the last timeout
        self.sock: Any = None  # the socket being read (set by the connection)

    def left(self) -> float:
        """Seconds before the deadline."""
        return self.deadline - (self.clock() - self.start)

    def over_deadline(self) -> LimitError:
        return LimitError(f"gave up after {_fmt(self.clock() - self.start)} s: the deadline of "
                          f"{_fmt(self.deadline)} s per source passed (--deadline)")

    def stalled(self, seconds: float, got: int) -> LimitError:
        return LimitError(f"too slow: {got} bytes in {_fmt(seconds)} s, fewer than the "
                          f"{self.stall_bytes} required (--stall-bytes / --stall-seconds)")

    def too_big(self, size: int) -> LimitError:
        return TooBigError(f"too big: more than {self.limit} bytes ({size} so far), more than "
                           "the file can be (its registry size + 10% + 1 MiB, or "
                           "--max-download-mb when the registry gives none)")

    def begin(self) -> None:
        """A new try: its progress window starts now."""
        if self.left() <= 0:
            raise self.over_deadline()
        self.mark = (self.clock(), self.got)

    def timeout(self, base: float) -> float:
        """How long the next wait may last: the tightest of ``base`` (a connect or read
        timeout), the stall window and the time left."""
        left = self.left()
        if left <= 0:
            raise self.over_deadline()
        value, self.bound = min((float(base), "read"), (self.stall_seconds, "stall"),
                                (left, "deadline"))
        return max(value, 0.001)

    def arm(self, base: float) -> None:
        """Set the read timeout of the current socket for the next read."""
        if self.sock is not None:
            self.sock.settimeout(self.timeout(base))

    def timed_out(self, timeouts: Tuple[float, float]) -> Exception:
        """What a timeout means: a broken rule, or (the read timeout) worth a retry."""
        if self.bound == "deadline" or self.left() <= 0:
            return self.over_deadline()
        if self.bound == "stall":
            return self.stalled(self.clock() - self.mark[0], self.got - self.mark[1])
        return TransientError(f"timed out (connect {timeouts[0]:g}s / read {timeouts[1]:g}s)")

    def expect(self, size: int) -> None:
        """The server announced the file will have ``size`` bytes: refuse it if too many."""
        if size > self.limit:
            raise TooBigError(f"too big: the server announces {size} bytes, more than the "
                              f"{self.limit} the file can be (its registry size + 10% + 1 MiB, "
                              "or --max-download-mb when the registry gives none)")

    def add(self, n: int, size: int) -> None:
        """``n`` more bytes arrived; the file now has ``size`` bytes."""
        self.got += n
        if size > self.limit:
            raise self.too_big(size)
        now = self.clock()
        if now - self.start >= self.deadline:
            raise self.over_deadline()
        since, got = self.mark
        if now - since >= self.stall_seconds:
            if self.got - got < self.stall_bytes:
                raise self.stalled(now - since, self.got - got)
            self.mark = (now, self.got)
