"""Runtime setup: pick a device, an execution mode, a seed and a thread count in one call.

Nothing here runs at import time. :func:`setup` is the one place where mindtf touches MindSpore's
process-wide context, and it reports what it chose::

    >>> import mindtf
    >>> info = mindtf.setup(device="auto", mode="pynative", seed=0)
    >>> info.device
    'CPU'

MindSpore keeps some settings for the life of the process (the CPU thread count can be set once),
so calling :func:`setup` again with a different thread count keeps the first one and says so.
"""
from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
import warnings
from dataclasses import asdict, dataclass
from typing import Iterator, Optional

from mindtf.compat import SUPPORTED_MINDSPORE, TESTED_CELLS, check_versions, version_tuple
from mindtf.errors import check_range
from mindtf.precision import resolve_precision

__all__ = ["RuntimeInfo", "setup", "available_devices", "env_report", "TESTED_MINDSPORE",
           "pynative", "graph_mode", "in_pynative", "default_threads", "execution_mode",
           "StopRequest", "stop_signals", "MAX_THREADS", "seed_all", "cpu_name"]

#: the (MindSpore, Python) cells mindtf's default test run passed in (``mindtf.compat``: the
#: supported range, the check behind ``env`` and the warning in :func:`setup`)
TESTED_MINDSPORE = TESTED_CELLS

#: the most CPU op threads :func:`setup` accepts
MAX_THREADS = 1024
_MODES = ("pynative", "graph")
_DEVICES = ("auto", "cpu", "gpu", "ascend")
# MindSpore allows the CPU op thread count to be set once per process; remember what was applied.
_applied_threads: Optional[int] = None


@dataclass(frozen=True)
class RuntimeInfo:
    """What :func:`setup` chose."""

    device: str  # "CPU", "GPU" or "Ascend"
    mode: str  # "pynative" or "graph"
    seed: Optional[int]
    threads: Optional[int]  # CPU op threads (None: MindSpore's default)
    mindspore_version: str
    precision: str = "fp32"  # what TrainConfig(precision="auto") computes in on this device

    def __str__(self) -> str:
        threads = self.threads if self.threads is not None else "default"
        return (f"mindtf runtime: device={self.device} mode={self.mode} seed={self.seed} "
                f"cpu_threads={threads} mindspore={self.mindspore_version} "
                f"precision(auto)={self.precision}")

    def as_dict(self) -> dict:
        return asdict(self)


def _quiet_mindspore():
    """Import MindSpore with its C++ log level at ERROR unless the user chose one (GLOG_v)."""
    os.environ.setdefault("GLOG_v", "3")
    import mindspore  # noqa: WPS433 (deliberately lazy)

    return mindspore


def available_devices() -> list:
    """Devices this MindSpore build can use right now, best first, e.g. ``["GPU", "CPU"]``.

    Uses MindSpore's own availability queries, which check the installed build and its driver
    libraries without starting a device (so no error spam for devices that are absent).
    """
    ms = _quiet_mindspore()
    found = []
    dc = ms.device_context
    for name, mod in (("Ascend", dc.ascend), ("GPU", dc.gpu), ("CPU", dc.cpu)):
        try:
            if mod.is_available():
                found.append(name)
        except Exception:  # an incomplete build: treat as absent
            pass
    if "CPU" not in found:
        found.append("CPU")
    return found


def default_threads() -> int:
    """The number of CPU cores this process may use (not MindSpore's default of 25 threads)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def setup(device: str = "auto", mode: str = "pynative", seed: Optional[int] = 0,
          threads: Optional[int] = None, verbose: bool = False,
          blocking: Optional[bool] = None) -> RuntimeInfo:
    """Configure MindSpore for mindtf and return what was chosen.

    Args:
        device: ``"auto"`` (Ascend > GPU > CPU, whichever this MindSpore build can use),
            ``"cpu"``, ``"gpu"`` or ``"ascend"`` (case-insensitive).
        mode: ``"pynative"`` (eager, op by op: best for learning and debugging) or ``"graph"``
            (the whole network compiled: fastest). The model code is the same in both.
        seed: seeds Python's ``random``, numpy and MindSpore; ``None`` leaves them alone.
        threads: CPU op threads. ``None`` uses the cores available to this process (MindSpore's
            own default of 25 oversubscribes a laptop). MindSpore accepts this once per process.
        verbose: print the returned :class:`RuntimeInfo`.
        blocking: launch PyNative ops synchronously. ``None`` (default) turns it on for the CPU,
            where MindSpore's asynchronous op pipeline competes with the compute threads for
            the cores: measured on a 2-core machine, KV-cached decoding of a 4-layer GPT took
            32 ms per token blocking and 240 ms asynchronous (compiled graphs: no difference).
            Like the thread count it applies to the whole process.

    The device decides what ``TrainConfig(precision="auto")`` trains in: ``info.precision``
    (fp32 on a CPU; bf16 on a GPU / Ascend NPU that has it, else fp16; :mod:`mindtf.precision`).

    Raises:
        ValueError: an unknown device or mode, or a device this MindSpore build cannot use.
    """
    if threads is not None:
        check_range("threads", threads, 1, MAX_THREADS, integer=True,
                    fix=f"This process may use {default_threads()} cores; leave it unset for that.")
    dev = str(device).lower()
    if dev not in _DEVICES:
        raise ValueError(f"device={device!r} is not one of {_DEVICES}.")
    md = str(mode).lower()
    if md not in _MODES:
        raise ValueError(f"mode={mode!r} is not one of {_MODES}.")
    ms = _quiet_mindspore()
    versions = check_versions(ms.__version__)
    if versions.status != "tested":
        warnings.warn(versions.message, stacklevel=2)
    avail = available_devices()
    if dev == "auto":
        target = avail[0]
    else:
        target = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}[dev]
        if target not in avail:
            raise ValueError(
                f"device={device!r} is not available to this MindSpore build "
                f"(available: {', '.join(avail)}). Install the MindSpore wheel for your {target} "
                "(see https://www.mindspore.cn/install) or use device='auto'.")
    ms.set_device(target)
    ms.set_context(mode=ms.GRAPH_MODE if md == "graph" else ms.PYNATIVE_MODE)

    global _applied_threads
    want = threads if threads is not None else default_threads()
    if threads is not None:  # mindtf's own CPU kernels (mindtf.kernels) read it at first use
        os.environ["MINDTF_KERNEL_THREADS"] = str(int(threads))
    if target == "CPU" or threads is not None:
        if _applied_threads is None:
            try:
                ms.device_context.cpu.op_tuning.threads_num(int(want))
                _applied_threads = int(want)
            except RuntimeError:  # already set by someone else in this process
                _applied_threads = None
        elif _applied_threads != want:
            warnings.warn(
                f"CPU threads were already set to {_applied_threads} in this process; MindSpore "
                f"cannot change them to {want}. Restart the kernel/process to change them.",
                stacklevel=2)
    if blocking is None:
        blocking = target == "CPU"
    if blocking:
        ms.runtime.launch_blocking()
    if seed is not None:
        seed_all(seed)
    info = RuntimeInfo(device=target, mode=md, seed=seed, threads=_applied_threads,
                       mindspore_version=ms.__version__,
                       precision=resolve_precision("auto", target))
    if verbose:
        print(info)
    return info


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what :mod:`platform` knows: benchmarks and
    measured results name the CPU they ran on."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def seed_all(seed: int) -> None:
    """Seed Python's ``random``, NumPy and MindSpore (weights made next start the same way)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    _quiet_mindspore().set_seed(seed)


@contextlib.contextmanager
def execution_mode(name: str):
    """Run the body in ``"pynative"`` or ``"graph"`` mode and restore the previous mode."""
    ms = _quiet_mindspore()
    want = ms.PYNATIVE_MODE if name == "pynative" else ms.GRAPH_MODE
    before = ms.get_context("mode")
    if before != want:
        ms.set_context(mode=want)
    try:
        yield
    finally:
        if before != want:
            ms.set_context(mode=before)


def pynative():
    """Run the body in PyNative mode and restore the previous mode afterwards.

    Decoding keeps Python-side key/value caches and loops over tokens, which only PyNative runs;
    this lets you decode right after training a compiled (GRAPH_MODE) model.
    """
    return execution_mode("pynative")


def graph_mode():
    """Run the body in GRAPH_MODE (compiled cells) and restore the previous mode afterwards."""
    return execution_mode("graph")


def in_pynative(fn):
    """Decorator: run ``fn`` inside :func:`pynative` (used by the decoding functions)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with pynative():
            return fn(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- Ctrl-C
class StopRequest:
    """What :func:`stop_signals` yields: ``signal`` is ``None`` until SIGINT or SIGTERM arrives,
    then its name; ``bool(request)`` says whether to stop."""

    def __init__(self) -> None:
        self.signal: Optional[str] = None

    def __bool__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def stop_signals(notice: str = "stopping at the next safe point") -> Iterator[StopRequest]:
    """Within the body, Ctrl-C (SIGINT) and SIGTERM ask the body to stop instead of killing it::

        with stop_signals("stopping after this step") as stop:
            while not stop:
                step()            # a compiled step is never cut in half
        # the previous handlers are back

    The first signal sets ``stop.signal`` (``"SIGINT"`` / ``"SIGTERM"``) and writes ``notice``
    to stderr (straight to the file descriptor: a handler must not re-enter a buffered stream
    the program may be writing to); the body checks it between units of work and winds down (a
    checkpoint, the text so far). A second signal raises ``KeyboardInterrupt`` at once: atomic
    writers then remove their temporary files and the last complete checkpoint stays as it was.

    Why SIGTERM too: in GRAPH_MODE, MindSpore's runtime installs its own SIGINT handler each
    time it runs a graph, and that handler turns Ctrl-C into a SIGTERM to the process, which
    would end it at once, without a word. Outside the main thread (where Python cannot install
    handlers) the body runs unprotected and ``stop`` stays false.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame) -> None:
        if request.signal is not None:
            raise KeyboardInterrupt
        request.signal = signal.Signals(signum).name
        msg = f"\ninterrupted: {notice} (press Ctrl-C again to quit at once)\n"
        try:
            os.write(sys.stderr.fileno(), msg.encode("utf-8", "replace"))
        except (AttributeError, OSError, ValueError):  # no file descriptor (a notebook, pytest)
            print(msg, end="", file=sys.stderr, flush=True)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, before in old.items():
            if before is None:  # installed outside Python: Python's own defaults
                before = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, before)


def _cann_version() -> Optional[str]:
    """The CANN toolkit version on an Ascend host, read from its version file, if present."""
    roots = [os.environ.get("ASCEND_HOME_PATH", ""), os.environ.get("ASCEND_TOOLKIT_HOME", ""),
             "/usr/local/Ascend/ascend-toolkit/latest", "/usr/local/Ascend/latest"]
    for root in roots:
        if not root:
            continue
        for rel in ("version.cfg", "compiler/version.info", "runtime/version.info"):
            path = os.path.join(root, rel)
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        if "version" in line.lower() and "=" in line:
                            return line.split("=", 1)[1].strip()
    return None


def env_report() -> tuple:
    """Collect the environment facts printed by ``python -m mindtf env``.

    Returns:
        ``(rows, warnings)``: a list of ``(name, value)`` pairs and a list of warning strings,
        each naming the exact fix.
    """
    import platform
    import sys

    import numpy as np

    from mindtf.version import __version__

    rows = [("python", sys.version.split()[0] + f" ({platform.platform()})"),
            ("mindtf", __version__), ("numpy", np.__version__)]
    problems = []
    if version_tuple(np.__version__) >= (2, 0, 0):
        problems.append(
            f"numpy {np.__version__} is installed, but MindSpore crashes with numpy 2 at "
            "the first transpose. Fix: pip install 'numpy<2'")
    try:
        ms = _quiet_mindspore()
    except Exception as exc:  # not installed or broken
        rows.append(("mindspore", f"not importable ({type(exc).__name__}: {exc})"))
        problems.append("MindSpore is missing. Fix: pip install -r requirements.txt (mindtf "
                        f"supports mindspore>={SUPPORTED_MINDSPORE[0]},<{SUPPORTED_MINDSPORE[1]})")
        return rows, problems
    rows.append(("mindspore", ms.__version__))
    versions = check_versions(ms.__version__)  # this MindSpore on this Python
    rows.append(("tested combination", {"tested": "yes", "untested": "no (supported, not tested)",
                                        "unsupported": "no (unsupported)"}[versions.status]))
    rows.append(("tested cells (MindSpore on Python)",
                 ", ".join(f"{m} on {p}" for m, p in TESTED_CELLS)))
    if versions.status != "tested":
        problems.append(versions.message)
    devs = available_devices()
    rows.append(("devices available", ", ".join(devs)))
    rows.append(("device auto picks", devs[0]))
    rows.append(("precision auto picks there", resolve_precision("auto", devs[0].lower())))
    if "Ascend" in devs:
        rows.append(("CANN", _cann_version() or "unknown (set ASCEND_HOME_PATH)"))
    rows.append(("CPU cores for this process", str(default_threads())))
    rows.append(("CPU op threads (mindtf.setup default)", str(default_threads())))
    rows.append(("GLOG_v (MindSpore log level)", os.environ.get("GLOG_v", "unset")))
    mirror = os.environ.get("MINDTF_DATA_MIRROR")
    rows.append(("MINDTF_DATA_MIRROR", mirror or "unset"))
    rows.append(("MINDTF_DATA_DIR", os.environ.get("MINDTF_DATA_DIR") or "unset"))
    return rows, problems
