"""Saving and loading models and training checkpoints.

A **model directory** holds ``config.json`` + ``model.safetensors``: for a :class:`~mindtf.gpt.GPT`
in Hugging Face GPT-2 format (see :mod:`mindtf.hf`), for a :class:`~mindtf.transformer.Transformer`
with mindtf's own names. :func:`load_model` reads either.

A **training checkpoint** is a model directory plus ``optimizer.safetensors`` (AdamW moments and
step) and ``trainer.json`` (step, schedule, data-order and RNG states, best validation loss, the
training config). Every directory is written to a temporary name and renamed into place, so a
crash never leaves a half-written checkpoint under the final name.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np

from mindspore import Tensor, nn

from .errors import CheckpointError

__all__ = ["save_model", "load_model", "write_dir_atomically", "save_state", "load_state"]

PathLike = Union[str, os.PathLike]


def write_dir_atomically(final: PathLike, write) -> Path:
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


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=_json_default)
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_state(params, path: PathLike, metadata: Dict[str, str] = None) -> None:
    """Write named parameters (or a name -> array dict) to a safetensors file."""
    from .weights import save_safetensors

    if isinstance(params, dict):
        state = {k: (v.asnumpy() if isinstance(v, Tensor) else np.asarray(v)) for k, v in params.items()}
    else:
        state = {p.name: p.asnumpy() for p in params}
    save_safetensors(state, path, metadata=metadata)


def load_state(path: PathLike) -> Dict[str, np.ndarray]:
    from .weights import load_state_dict

    return load_state_dict(path)


def save_model(model: nn.Cell, path: PathLike) -> None:
    """Write ``model`` to the directory ``path`` (config.json + model.safetensors)."""
    from .gpt import GPT
    from .transformer import Transformer

    path = Path(path)
    if isinstance(model, GPT):
        from .hf import save_gpt

        save_gpt(model, path)
        return
    if isinstance(model, Transformer):
        path.mkdir(parents=True, exist_ok=True)
        save_state(model.get_parameters(), path / "model.safetensors", {"format": "mindtf"})
        _write_json(path / "config.json", {"model_type": "mindtf-transformer",
                                           "mindtf": model.config.to_dict()})
        return
    raise CheckpointError(f"save_model supports GPT and Transformer, not {type(model).__name__}; "
                          "use mindtf.checkpoint.save_state(model.get_parameters(), file).")


def load_model(path: PathLike, **overrides) -> nn.Cell:
    """Build the model saved in directory ``path`` (GPT or Transformer) in eval mode."""
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{cfg_file} not found: a model directory has config.json and "
                              "model.safetensors (written by save_model or a training run).")
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    if cfg.get("model_type") == "mindtf-transformer":
        from .transformer import Transformer, TransformerConfig

        model = Transformer(TransformerConfig(**{**cfg["mindtf"], **overrides}))
        state = load_state(path / "model.safetensors")
        load_params(model, state)
        model.set_train(False)
        return model
    from .hf import load_gpt

    return load_gpt(path, **overrides)


def load_params(cell: nn.Cell, state: Dict[str, np.ndarray], strict: bool = True) -> None:
    """Copy ``state`` into ``cell``'s parameters by name, with a clear error on mismatch."""
    params = {p.name: p for p in cell.get_parameters()}
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    bad = [k for k in set(params) & set(state) if tuple(params[k].shape) != tuple(state[k].shape)]
    if strict and (missing or unexpected or bad):
        raise CheckpointError(f"checkpoint does not match the model: missing {missing[:10]}, "
                              f"unexpected {unexpected[:10]}, mis-shaped {sorted(bad)[:10]}.")
    for name, p in params.items():
        if name in state:
            p.set_data(Tensor(np.ascontiguousarray(state[name]), dtype=p.dtype))
