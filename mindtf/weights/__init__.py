"""Weight files <-> dicts of numpy arrays, with numpy only: no torch, no MindSpore, no pickle run.

:func:`read_state` is the front door; it reads, by name or, failing that, by content::

    *.safetensors                  -> mindtf.weights.safetensors  (any dtype; bf16/fp8 -> float32)
    *.bin *.pt *.pth *.ckpt, zip   -> mindtf.weights.torch_zip    (restricted unpickler)
    *.index.json                   -> each shard of the weight_map, read as above
    directory                      -> the first of model.safetensors, model.safetensors.index.json,
                                      pytorch_model.bin, pytorch_model.bin.index.json
                                   -> {name: np.ndarray}

Writing is safetensors only (:func:`write_safetensors`, atomic). Between the arrays and a model:
:mod:`mindtf.weights.gpt2` (Hugging Face GPT-2 names and layouts) and :mod:`mindtf.weights.state`
(the strict copy into a cell's parameters, which imports MindSpore only when called).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np

from mindtf.errors import CheckpointError
from mindtf.weights.gpt2 import CONV1D_SUFFIXES, from_gpt2_names, to_gpt2_names
from mindtf.weights.safetensors import (
    is_safetensors,
    read_safetensors,
    read_safetensors_metadata,
    write_safetensors,
)
from mindtf.weights.state import copy_into, state_of
from mindtf.weights.torch_zip import (
    TORCH_SUFFIXES,
    check_not_legacy_torch,
    read_torch_file,
    read_torch_state,
)

__all__ = [
    "read_state",
    "read_torch_file",
    "read_safetensors",
    "read_safetensors_metadata",
    "write_safetensors",
    "copy_into",
    "state_of",
    "from_gpt2_names",
    "to_gpt2_names",
    "CONV1D_SUFFIXES",
    "SAFE_WEIGHTS_NAME",
    "SAFE_WEIGHTS_INDEX_NAME",
    "WEIGHTS_NAME",
    "WEIGHTS_INDEX_NAME",
]

PathLike = Union[str, "os.PathLike[str]"]

#: File names a Hugging Face model directory may hold, in the order :func:`read_state` tries them.
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
_DIR_CANDIDATES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME)


def _shard_path(directory: Path, name: Any, index_path: Path) -> Path:
    """``directory / name``, refusing names that leave the directory (``../x``, ``/etc/x``)."""
    if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in Path(name).parts:
        raise CheckpointError(f"{index_path}: invalid shard file name {name!r} in weight_map.")
    return directory / name


def _read_sharded(index_path: Path) -> Dict[str, np.ndarray]:
    """The tensors of ``{"weight_map": {tensor name: shard file}}``, each shard read once."""
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{index_path}: not a valid checkpoint index ({exc}).") from exc
    shards: Dict[str, List[str]] = {}
    for key, shard in weight_map.items():
        shards.setdefault(shard, []).append(key)
    directory = index_path.parent
    missing = [s for s in shards if not _shard_path(directory, s, index_path).is_file()]
    if missing:
        raise CheckpointError(
            f"{index_path}: shard file(s) missing in {directory}: {', '.join(sorted(missing))}."
        )
    out: Dict[str, np.ndarray] = {}
    for shard, keys in shards.items():
        part = _read_file(_shard_path(directory, shard, index_path))
        absent = [k for k in keys if k not in part]
        if absent:
            raise CheckpointError(
                f"{index_path}: shard {shard} lacks {len(absent)} tensor(s) the index puts there, "
                f"e.g. {absent[0]!r}."
            )
        for k in keys:
            out[k] = part[k]
    return out


def _read_file(path: Path) -> Dict[str, np.ndarray]:
    name = path.name
    if name.endswith(".index.json"):
        return _read_sharded(path)
    if name.endswith(".safetensors"):
        return read_safetensors(path)
    if name.endswith(TORCH_SUFFIXES) or zipfile.is_zipfile(path):
        return read_torch_state(path)
    if is_safetensors(path):  # unknown suffix: sniff the content
        return read_safetensors(path)
    check_not_legacy_torch(path)
    raise CheckpointError(
        f"{path}: unsupported weight file format; expected .safetensors, a PyTorch zip checkpoint "
        "(.bin/.pt/.pth) or a *.index.json of shards."
    )


def read_state(path: PathLike) -> Dict[str, np.ndarray]:
    """Read model weights as ``{name: np.ndarray}`` from a file or a Hugging Face model directory.

    Args:
        path: a ``.safetensors`` file, a PyTorch zip checkpoint (``.bin``/``.pt``/``.pth``), a
            shard index (``*.index.json``), or a directory holding one of, in order of preference,
            ``model.safetensors``, ``model.safetensors.index.json``, ``pytorch_model.bin``,
            ``pytorch_model.bin.index.json``.

    Returns:
        Tensor name -> numpy array (writeable, C-contiguous). bfloat16/float8 tensors are returned
        as float32; tensors sharing storage in the file come back as independent arrays.

    Raises:
        CheckpointError: nothing found (the message lists what was looked for), an unsupported or
            legacy format, a corrupt file, or a pickle that would run code.
    """
    path = Path(path)
    if path.is_dir():
        for name in _DIR_CANDIDATES:
            if (path / name).is_file():
                return _read_file(path / name)
        raise CheckpointError(
            f"no weights found in directory {path}: looked for {', '.join(_DIR_CANDIDATES)}."
        )
    if not path.exists():
        raise CheckpointError(
            f"weights not found: {path} does not exist (expected a .safetensors/.bin/.pt/.pth file "
            f"or a model directory with one of {', '.join(_DIR_CANDIDATES)})."
        )
    return _read_file(path)
