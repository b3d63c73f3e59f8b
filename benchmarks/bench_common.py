"""What both benchmark scripts share: machine facts, the quiet-machine rule, result files.

::

    machine_info()  ──► CPU model, cores, RAM, OS, versions   (no framework imported)
    load_snapshot() ──► {"time", "loadavg", "uptime"}          (taken before and after a run)
    reportability(before, after, ...) ──► (reportable, reasons)
    result_path(kind, quick, reportable, out) ──► the JSON file name (never the quoted one
                                                 for a run whose numbers must not be quoted)

**The reportable rule.** A run's numbers may be quoted only when the machine was quiet: the
1-minute load average before the run is at most ``QUIET_LOAD_BEFORE`` (0.5), and after it at most
``cores + 0.5`` (the run's own threads raise it while they work). A run that breaks the rule gets
``"reportable": false`` with the reasons in its JSON, a loud line on stdout, and is written as
``<kind>_busy_<date>.json``. ``--quick`` smoke runs are never reportable either.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from datetime import datetime
from pathlib import Path

from mindtf.runtime import cpu_name, default_threads  # imports no MindSpore

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: the 1-minute load average above which, before a run, its numbers must not be quoted
QUIET_LOAD_BEFORE = 0.5
#: after a run the load may be the machine's cores plus this (the run's own threads count)
QUIET_LOAD_AFTER_MARGIN = 0.5


def _ram_gib():
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"') + f" ({platform.release()})"
    except OSError:
        pass
    return platform.platform()


def _version(module: str):
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def loadavg():
    """``[1, 5, 15]``-minute load averages, or ``None`` where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def load_snapshot() -> dict:
    """The time, ``os.getloadavg()`` and the output of ``uptime`` (taken before and after)."""
    try:
        up = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        up = None
    return {"time": datetime.now().isoformat(timespec="seconds"), "loadavg": loadavg(),
            "uptime": up}


def machine_info() -> dict:
    """CPU model, cores, RAM, OS and library versions (read without importing the frameworks)."""
    load = loadavg()
    return {
        "cpu": cpu_name(),
        "cores_logical": os.cpu_count(),
        "cores_available": default_threads(),
        "ram_gib": _ram_gib(),
        "os": _os_name(),
        "python": platform.python_version(),
        "mindspore": _version("mindspore"),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "mindtf": _version("mindtf"),
        "loadavg_at_start": load,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "GLOG_v",
                                               "MINDTF_KERNELS")},
    }


def reportability(before: dict, after: dict, quick: bool = False, extra=()) -> tuple:
    """``(reportable, reasons)`` for a run with load snapshots ``before`` and ``after``;
    ``extra`` adds reasons of the caller's own (e.g. too few rounds)."""
    cores = os.cpu_count() or 1
    reasons = []
    if quick:
        reasons.append("a --quick smoke run (tiny model, 1 round)")
    if before.get("loadavg") is None:
        reasons.append("no load average on this OS: cannot tell whether the machine was quiet")
    else:
        if before["loadavg"][0] > QUIET_LOAD_BEFORE:
            reasons.append(f"busy before the run: 1-minute load {before['loadavg'][0]:.2f} > "
                           f"{QUIET_LOAD_BEFORE}")
        if after.get("loadavg") and after["loadavg"][0] > cores + QUIET_LOAD_AFTER_MARGIN:
            reasons.append(f"busy after the run: 1-minute load {after['loadavg'][0]:.2f} > "
                           f"{cores} cores + {QUIET_LOAD_AFTER_MARGIN}")
    reasons.extend(extra)
    return not reasons, reasons


def is_busy(reasons) -> bool:
    return any(r.startswith("busy") for r in reasons)


def busy_now(threads: int):
    """A warning before starting when the machine is already busy, else ``None``."""
    snap = loadavg()
    if snap is None or snap[0] <= QUIET_LOAD_BEFORE:
        return None
    return (f"the machine is busy (1-minute load {snap[0]:.2f} on {os.cpu_count()} cores, before "
            f"this benchmark's {threads} threads): timings will be noisy and unfair, and this "
            "run will be marked not reportable. Run on a quiet machine for numbers you quote.")


def loud_not_reportable(reasons) -> str:
    bar = "!" * 78
    return (f"{bar}\n!!! NOT REPORTABLE: these numbers must not be quoted anywhere.\n"
            + "".join(f"!!!   - {r}\n" for r in reasons) + bar)


def write_json(obj: dict, path: Path) -> Path:
    """Write atomically (``.tmp`` then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def default_out(kind: str, quick: bool, busy: bool = False) -> Path:
    """``results/<kind>_<date>.json``; ``<kind>_busy_<date>.json`` for a busy machine, and a
    ``_quick`` suffix for smoke runs."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H%M%S")
    return RESULTS / f"{kind}{'_busy' if busy else ''}_{stamp}{'_quick' if quick else ''}.json"


def result_path(kind: str, quick: bool, reasons, out=None) -> Path:
    """Where to write: ``out`` if given (the caller chose; the JSON still says
    ``reportable``), else :func:`default_out` — never ``results/<kind>.json`` (the file the
    README quotes) and never an undecorated name for a busy run."""
    quoted = (RESULTS / f"{kind}.json").resolve()
    if out is not None and (not reasons or Path(out).resolve() != quoted):
        return Path(out)
    return default_out(kind, quick, busy=is_busy(reasons))


def summarise(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
