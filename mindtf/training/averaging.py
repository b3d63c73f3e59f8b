"""Checkpoint averaging: the element-wise mean of the weights of a run's last checkpoints.

The weights of the last few checkpoints of a run lie around the same minimum; their mean is often
a little better than any one of them (Vaswani et al. 2017 averaged the last 5 or 20 checkpoints
of their Transformers). With ``TrainConfig.average_last = N`` the Trainer keeps at least N step
checkpoints and, at the end of ``fit``, writes their mean as ``RUN/checkpoints/averaged``::

    RUN/checkpoints/step_0001000 ─┐
    RUN/checkpoints/step_0001250 ─┼─ average_checkpoints ─> write_average ─> checkpoints/averaged/
    RUN/checkpoints/step_0001500 ─┘  {name: mean array}                      config.json,
                                                                             model.safetensors,
                                                                             tokenizer files, ...

``checkpoints/averaged`` is a model folder like the others (``from_pretrained``, ``translate
--checkpoint``), without the optimiser state: it is for decoding, not for resuming.
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from mindtf.errors import CheckpointError
from mindtf.training.checkpoints import (AVERAGED, CHECKPOINTS, TRAINER_STATE, PathLike,
                                         step_checkpoints, write_dir_atomically, write_json)
from mindtf.weights import read_safetensors_metadata, read_state, write_safetensors

__all__ = ["average_checkpoints", "write_average", "average_last"]


def average_checkpoints(paths: Sequence[PathLike]) -> Dict[str, np.ndarray]:
    """The element-wise mean of the weights of checkpoint folders (or weight files)::

        step_0001000/model.safetensors ─┐
        step_0001250/model.safetensors ─┼─> {name: sum in float64 / N, cast back to its dtype}
        step_0001500/model.safetensors ─┘

    Floating-point arrays are averaged; other arrays (integer counters, bool masks) are taken from
    the last path. Every checkpoint must hold the same names with the same shapes, else a
    :class:`~mindtf.errors.CheckpointError` lists the differences. Load the mean into a model
    with ``model.load_state_dict(average_checkpoints(paths))``; :func:`write_average` writes it
    as a checkpoint folder."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise CheckpointError("no checkpoints to average: pass one or more checkpoint folders.")
    sums: Dict[str, np.ndarray] = {}
    first: Dict[str, np.ndarray] = {}
    for i, path in enumerate(paths):
        state = read_state(path)
        if i == 0:
            first = state
            sums = {k: v.astype(np.float64) if _is_float(v) else v for k, v in state.items()}
            continue
        _check_same_names_and_shapes(paths[0], first, path, state)
        for k, v in state.items():
            sums[k] = sums[k] + v if _is_float(v) else v
    return {k: (v / len(paths)).astype(first[k].dtype) if _is_float(first[k]) else v
            for k, v in sums.items()}


def _is_float(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.floating)


def _check_same_names_and_shapes(path0: Path, state0: Dict[str, np.ndarray], path: Path,
                                 state: Dict[str, np.ndarray]) -> None:
    problems = [f"{k} only in {path0}" for k in sorted(set(state0) - set(state))]
    problems += [f"{k} only in {path}" for k in sorted(set(state) - set(state0))]
    problems += [f"{k} has shape {tuple(state0[k].shape)} in {path0} but "
                 f"{tuple(state[k].shape)} in {path}"
                 for k in sorted(set(state0) & set(state)) if state0[k].shape != state[k].shape]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CheckpointError(f"cannot average checkpoints of different models: "
                              f"{'; '.join(problems[:5])}{more}. Average checkpoints of one run "
                              "(the same model config).")


def write_average(paths: Sequence[PathLike], out: PathLike) -> Path:
    """Write the mean of ``paths`` (:func:`average_checkpoints`) as the checkpoint folder
    ``out``, atomically: the last path's folder (``config.json``, tokenizer files, its
    ``trainer.json`` plus ``"averaged_from"``) with the mean as ``model.safetensors``, and without
    the optimiser state (a mean of weights is for decoding, not for resuming). Returns ``out``."""
    paths = [Path(p) for p in paths]
    mean = average_checkpoints(paths)
    last = paths[-1]

    def write(tmp: Path) -> None:
        for item in last.iterdir():
            if item.is_file() and item.name not in ("model.safetensors", "optimizer.safetensors",
                                                    TRAINER_STATE):
                shutil.copy2(item, tmp / item.name)
        meta = read_safetensors_metadata(last / "model.safetensors")
        write_safetensors(mean, tmp / "model.safetensors", metadata=meta or None)
        try:
            state = json.loads((last / TRAINER_STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        state = state if isinstance(state, dict) else {}
        state["averaged_from"] = [p.name for p in paths]
        write_json(tmp / TRAINER_STATE, state)

    return write_dir_atomically(out, write)


def average_last(run_dir: PathLike, n: int, name: str = AVERAGED) -> Optional[Path]:
    """Average the run's last ``n`` step checkpoints into ``RUN/checkpoints/<name>``; warns when
    the run has fewer (and averages those), returns ``None`` when it has none."""
    steps = step_checkpoints(run_dir)[-n:]
    if not steps:
        return None
    if len(steps) < n:
        warnings.warn(f"average_last={n} but the run has {len(steps)} step checkpoint(s): "
                      f"averaged {len(steps)} (evaluate more often: lower eval_interval).",
                      RuntimeWarning, stacklevel=2)
    return write_average(steps, Path(run_dir) / CHECKPOINTS / name)
