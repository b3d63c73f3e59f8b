"""Training checkpoints in a run folder: written atomically, found in one place, pruned.

::

    RUN/                         (TrainConfig.out_dir)
    ├── config.yaml              the resolved run configuration (mindtf.config.write_run_config)
    ├── metrics.jsonl  loss.png
    └── checkpoints/
        ├── latest               a text file naming the newest checkpoint folder
        ├── best/                lowest validation loss so far
        ├── averaged/            mean of the last N step_* weights (TrainConfig.average_last)
        └── step_0000500/        model directory (config.json + model.safetensors)
            ├── optimizer.safetensors    AdamW moments and step
            ├── trainer.json             step, schedule, data order, RNG states, best loss,
            │                            sha256 of the tokenizer files
            └── tokenizer.json ...       written by the recipe (Trainer's on_checkpoint)

Every folder is written under a temporary name and renamed into place, so a crash never leaves a
half-written checkpoint under a final name (a second Ctrl-C included).
:func:`find_checkpoint` is the one place that turns "a run folder or a checkpoint folder" into a
checkpoint folder, :func:`resume_checkpoint` the one that finds where a run resumes.
Averaging checkpoints (``checkpoints/averaged``) is :mod:`mindtf.training.averaging`'s.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional, Union

import numpy as np

from mindtf.errors import CheckpointError, ConfigError, MindtfError
from mindtf.fileio import file_digest, write_text_atomically

__all__ = ["write_dir_atomically", "write_json", "find_checkpoint", "latest_checkpoint",
           "resume_checkpoint", "read_trainer_state", "check_tokenizer_files", "check_same_model",
           "check_run_folder", "mark_latest", "prune_checkpoints", "step_checkpoints",
           "keep_metrics_until", "rng_states", "restore_rng_states", "CHECKPOINTS", "LATEST",
           "BEST", "AVERAGED", "TRAINER_STATE"]

PathLike = Union[str, os.PathLike]
CHECKPOINTS, LATEST, BEST, AVERAGED = "checkpoints", "latest", "best", "averaged"
#: the trainer's own state in each checkpoint folder
TRAINER_STATE = "trainer.json"


def write_dir_atomically(final: PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_dir)`` then rename ``tmp_dir`` to ``final`` (replacing an old one)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    old = final.with_name(f".{final.name}.old")
    try:
        write(tmp)
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:  # an error, or a second Ctrl-C: the previous folder stays
        if old.exists() and not final.exists():
            os.replace(old, final)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (numpy scalars and arrays allowed)."""
    write_text_atomically(path, json.dumps(obj, indent=2, sort_keys=True,
                                           default=_json_default))


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
    try:
        return resume_checkpoint(run_dir)
    except CheckpointError:
        return None


def resume_checkpoint(run_dir: PathLike) -> Path:
    """The checkpoint a run resumes from (``RUN/checkpoints/latest``), or a
    :class:`~mindtf.errors.CheckpointError` that says why there is none and what to do."""
    run = Path(run_dir)
    marker = run / CHECKPOINTS / LATEST
    if not run.is_dir():
        raise CheckpointError(f"nothing to resume: the run folder {run} does not exist. Pass the "
                              "train.out_dir of an earlier run, or train without --resume.")
    if not marker.is_file():
        raise CheckpointError(f"nothing to resume in {run}: {marker} does not exist (the run has "
                              "written no checkpoint yet). Train without --resume.")
    try:
        name = marker.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    path = marker.parent / name
    if not name or "/" in name or not (path / TRAINER_STATE).is_file():
        found = sorted(p.name for p in marker.parent.iterdir()
                       if (p / TRAINER_STATE).is_file())
        fix = (f"write the name of one of {found} into {marker}" if found
               else "train without --resume")
        raise CheckpointError(f"{marker} names {name!r}, which is not a checkpoint folder in "
                              f"{marker.parent}: {fix}.")
    return path


def read_trainer_state(checkpoint: PathLike) -> dict:
    """``CHECKPOINT/trainer.json`` (step, data order, RNG states, ...), checked: a missing, damaged
    or incomplete file is a :class:`~mindtf.errors.CheckpointError` naming it."""
    path = Path(checkpoint) / TRAINER_STATE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        ok = (isinstance(state, dict) and isinstance(state.get("step"), int)
              and state["step"] >= 0 and isinstance(state.get("best_val"), (int, float))
              and isinstance(state.get("train_batches"), dict)
              and isinstance(state.get("rng"), dict))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} cannot be read ({exc}): resume from another checkpoint "
                              "(write its folder name into checkpoints/latest).") from None
    if not ok:
        raise CheckpointError(f"{path} is damaged (it needs step, best_val, train_batches and "
                              "rng): resume from another checkpoint (write its folder name into "
                              "checkpoints/latest).")
    return state


def check_tokenizer_files(checkpoint: PathLike) -> None:
    """Check the tokenizer files of a checkpoint folder against the sha256 its ``trainer.json``
    recorded when it was written (``"tokenizer": {file: sha256}``); a file that changed since
    is a :class:`~mindtf.errors.CheckpointError`. Folders without a readable record pass."""
    folder = Path(checkpoint)
    try:  # loosely: the weights are usable without the trainer's state
        recorded = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))["tokenizer"]
        recorded = {str(k): str(v) for k, v in recorded.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return  # saved with save_pretrained, or an older checkpoint: nothing recorded
    changed = [name for name, digest in sorted(recorded.items())
               if not (folder / name).is_file() or file_digest(folder / name) != digest]
    if changed:
        raise CheckpointError(f"{folder}: {', '.join(changed)} is not the tokenizer this model "
                              "was trained with (its sha256 differs from the one recorded in "
                              f"{TRAINER_STATE}). Put the training run's own file back.")


def check_same_model(model: Any, path: PathLike) -> None:
    """Raise :class:`~mindtf.errors.CheckpointError` naming every config field in which
    ``model.config`` differs from the checkpoint folder's ``config.json`` (a model without
    ``config_from_json`` passes: the strict state loading still checks shapes)."""
    path = Path(path)
    read = getattr(type(model), "config_from_json", None)
    if read is None:
        return
    try:
        saved = read(json.loads((path / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, MindtfError) as exc:
        raise CheckpointError(f"{path / 'config.json'} cannot be read ({exc}): resume from "
                              "another checkpoint (write its folder name into "
                              "checkpoints/latest).") from None
    ours, theirs = model.config.to_dict(), saved.to_dict()
    diff = [f"{k} (checkpoint {theirs.get(k)!r}, now {ours.get(k)!r})"
            for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
    if diff:
        raise CheckpointError(
            f"cannot resume from {path}: the configured model differs from the checkpoint's "
            f"in {'; '.join(diff)}. Resume with the checkpoint's settings (drop the options "
            "that change them), or start a new run in another train.out_dir.")


def check_run_folder(path: PathLike) -> Path:
    """Raise :class:`~mindtf.errors.ConfigError` if ``path`` cannot hold a run: it is a file, it
    lies under a file, or the folder it would be made in is not writable. Writes nothing."""
    run = Path(path)
    if run.exists() and not run.is_dir():
        raise ConfigError(f"the run folder {run} (train.out_dir) is a file: choose another "
                          "train.out_dir or move the file away.")
    existing = run.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"the run folder {run} (train.out_dir) cannot be made: {existing} is a "
                          "file. Choose another train.out_dir.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"the run folder {run} (train.out_dir) cannot be written: {existing} "
                          "is read-only. Choose a folder you can write to.")
    return run


def find_checkpoint(path: PathLike, prefer: str = BEST) -> Path:
    """A checkpoint folder from ``path``: ``path`` itself if it holds ``config.json``, else the
    run folder's ``checkpoints/best`` (with ``prefer="best"``; ``prefer="averaged"``: its
    ``checkpoints/averaged``, else ``best``) or its latest checkpoint."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    order = {BEST: (BEST,), AVERAGED: (AVERAGED, BEST)}.get(prefer, ())
    for name in order:
        if (path / CHECKPOINTS / name / "config.json").is_file():
            return path / CHECKPOINTS / name
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    raise CheckpointError(f"no checkpoint in {path}: pass a checkpoint folder (it holds "
                          f"config.json) or a run folder with {CHECKPOINTS}/{BEST} or "
                          f"{CHECKPOINTS}/{LATEST} (written by 'python -m mindtf train').")


def mark_latest(run_dir: PathLike, name: str) -> None:
    """Point ``RUN/checkpoints/latest`` at checkpoint ``name`` (atomically)."""
    write_text_atomically(Path(run_dir) / CHECKPOINTS / LATEST, name)


def prune_checkpoints(run_dir: PathLike, keep_last: int) -> None:
    """Keep the newest ``keep_last`` ``step_*`` checkpoints up to the one ``latest`` names and
    delete the others, those of later steps included (left by an earlier run in the same folder:
    they would otherwise outlive the new ones). ``best`` is never pruned."""
    steps = sorted(p for p in (Path(run_dir) / CHECKPOINTS).glob("step_*") if p.is_dir())
    latest = latest_checkpoint(run_dir)
    stale = []
    if latest in steps:
        cut = steps.index(latest) + 1
        steps, stale = steps[:cut], steps[cut:]
    for old in stale + (steps[:-keep_last] if keep_last > 0 else steps):
        shutil.rmtree(old, ignore_errors=True)


def keep_metrics_until(run_dir: PathLike, step: int, write: bool = True) -> Optional[List[dict]]:
    """The rows of ``RUN/metrics.jsonl`` up to ``step`` (``None`` without the file); with
    ``write`` the file is rewritten without the later ones (left by a run that went on past its
    last checkpoint, or by an earlier run in this folder), so that a resumed run logs every step
    once."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a line cut short by a crash
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            rows.append(row)
    if write:
        write_text_atomically(path, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def step_checkpoints(run_dir: PathLike) -> List[Path]:
    """The run's ``step_*`` checkpoint folders up to the one ``latest`` names, oldest first."""
    steps = sorted(p for p in (Path(run_dir) / CHECKPOINTS).glob("step_*")
                   if (p / "model.safetensors").is_file())
    latest = latest_checkpoint(run_dir)
    return steps[:steps.index(latest) + 1] if latest in steps else steps


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
