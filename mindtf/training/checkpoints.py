"""Training checkpoints in a run folder: written atomically, found in one place, pruned.

::

    RUN/                         (TrainConfig.out_dir)
    ├── config.yaml              the resolved run configuration (mindtf.config.write_run_config)
    ├── metrics.jsonl  loss.png
    └── checkpoints/
        ├── latest               a text file naming the newest checkpoint folder
        ├── best/                lowest validation loss so far
        └── step_0000500/        model directory (config.json + model.safetensors)
            ├── optimizer.safetensors    AdamW moments and step
            └── trainer.json             step, schedule, data order, RNG states, best loss

Every folder is written under a temporary name and renamed into place, so a crash never leaves a
half-written checkpoint under a final name. :func:`find_checkpoint` is the one place that turns
"a run folder or a checkpoint folder" into a checkpoint folder.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from mindtf.errors import CheckpointError

__all__ = ["write_dir_atomically", "write_json", "find_checkpoint", "latest_checkpoint",
           "mark_latest", "prune_checkpoints", "rng_states", "restore_rng_states",
           "CHECKPOINTS", "LATEST", "BEST"]

PathLike = Union[str, os.PathLike]
CHECKPOINTS, LATEST, BEST = "checkpoints", "latest", "best"


def write_dir_atomically(final: PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_dir)`` then rename ``tmp_dir`` to ``final`` (replacing an old one)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write(tmp)
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (numpy scalars and arrays allowed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=_json_default)
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --------------------------------------------------------------------------- finding
def latest_checkpoint(run_dir: PathLike) -> Optional[Path]:
    """The folder named by ``RUN/checkpoints/latest``, or ``None`` if the run has none."""
    marker = Path(run_dir) / CHECKPOINTS / LATEST
    if not marker.is_file():
        return None
    path = marker.parent / marker.read_text(encoding="utf-8").strip()
    return path if path.is_dir() else None


def find_checkpoint(path: PathLike, prefer: str = BEST) -> Path:
    """A checkpoint folder from ``path``: ``path`` itself if it holds ``config.json``, else the
    run folder's ``checkpoints/best`` (with ``prefer="best"``) or its latest checkpoint."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    best = path / CHECKPOINTS / BEST
    if prefer == BEST and (best / "config.json").is_file():
        return best
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    raise CheckpointError(f"no checkpoint in {path}: pass a checkpoint folder (it holds "
                          f"config.json) or a run folder with {CHECKPOINTS}/{BEST} or "
                          f"{CHECKPOINTS}/{LATEST} (written by 'python -m mindtf train').")


def mark_latest(run_dir: PathLike, name: str) -> None:
    """Point ``RUN/checkpoints/latest`` at checkpoint ``name`` (atomically)."""
    ckdir = Path(run_dir) / CHECKPOINTS
    tmp = ckdir / (LATEST + ".tmp")
    tmp.write_text(name, encoding="utf-8")
    os.replace(tmp, ckdir / LATEST)


def prune_checkpoints(run_dir: PathLike, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` ``step_*`` checkpoints (best is never pruned)."""
    steps = sorted(p for p in (Path(run_dir) / CHECKPOINTS).glob("step_*") if p.is_dir())
    for old in steps[:-keep_last] if keep_last > 0 else steps:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- RNG states <-> JSON
def rng_states() -> dict:
    """Python's, numpy's and MindSpore's global RNG states as JSON-friendly lists."""
    import mindspore as ms

    py = random.getstate()
    npst = np.random.get_state()
    return {"python": [py[0], list(py[1]), py[2]],
            "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])],
            "mindspore": (ms.get_rng_state().asnumpy().tolist()
                          if hasattr(ms, "get_rng_state") else None)}


def restore_rng_states(states: dict) -> None:
    """Inverse of :func:`rng_states`."""
    import mindspore as ms

    py = states["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = states["numpy"]
    np.random.set_state((npst[0], np.array(npst[1], dtype=np.uint32), npst[2], npst[3], npst[4]))
    if states.get("mindspore") is not None and hasattr(ms, "set_rng_state"):
        ms.set_rng_state(ms.Tensor(np.array(states["mindspore"], dtype=np.uint8)))
