"""Read PyTorch zip checkpoints (``torch.save``, torch>=1.6) with numpy only: no torch, no code run.

``*.bin``, ``*.pt``, ``*.pth`` files (and what ``transformers`` wrote with
``save_pretrained(safe_serialization=False)``) are zip archives::

    <folder>/data.pkl     the pickled object (a state dict: name -> tensor record)
    <folder>/data/0, 1..  the raw bytes of each storage, one file per storage
    <folder>/byteorder    "little" or "big" (absent in old files: little)
    <folder>/version      format version

``<folder>`` is ``archive`` or the file's stem. Reading goes in two passes::

    data.pkl --RestrictedUnpickler--> object with LazyTensor leaves (storage key, offset,
                                      |                              size, stride, dtype)
                                      v
    data/<key> --read once per storage, view by (offset, size, stride), copy--> np.ndarray

The unpickler (:mod:`mindtf.weights.torch_pickle`) knows only how to rebuild tensors and dicts; any
other object in the pickle (``os.system``, ``builtins.eval``, a custom class...) raises
:class:`~mindtf.errors.CheckpointError` before anything is called. Tensors that share a storage
come back as independent arrays; bfloat16 and float8 become float32 (see
:mod:`mindtf.weights.dtypes`). Legacy (pre-1.6, non-zip) files and TorchScript archives are refused
with a message that says how to convert them.
"""

from __future__ import annotations

import os
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np

from mindtf.errors import CheckpointError
from mindtf.weights.dtypes import raw_dtype, to_native
from mindtf.weights.torch_pickle import LazyTensor, RestrictedUnpickler

__all__ = ["read_torch_file", "read_torch_state", "check_not_legacy_torch", "TORCH_SUFFIXES"]

PathLike = Union[str, "os.PathLike[str]"]

#: file suffixes read as PyTorch checkpoints without sniffing their content
TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_RESAVE_HINT = (
    "Re-save it with a recent torch (`torch.save(torch.load(path, weights_only=True), path)`, "
    "torch>=1.6 writes the zip format) or convert it to safetensors "
    "(`safetensors.torch.save_file(state_dict, 'model.safetensors')`)."
)


def _find_pickle(names: List[str], path: Path) -> str:
    """The archive's ``<folder>/data.pkl`` (the folder varies: ``archive``, the file's stem...)."""
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise CheckpointError(
            f"{path}: this is a TorchScript archive (torch.jit.save), not a state dict. Save "
            "`model.state_dict()` with torch.save or safetensors instead."
        )
    pkls = sorted((n for n in names if n.endswith("/data.pkl") and n.count("/") == 1), key=len)
    if not pkls:
        raise CheckpointError(
            f"{path}: zip file without a `<name>/data.pkl` entry: not a PyTorch checkpoint."
        )
    return pkls[0]


def check_not_legacy_torch(path: Path) -> None:
    """Raise :class:`CheckpointError` (saying how to convert it) if ``path`` is a pre-1.6 file."""
    with open(path, "rb") as fh:
        head = fh.read(32)
    # torch<1.6 starts with the pickled magic number 0x1950a86a20f9469cfc6c (protocol 2 long)
    if head[:2] == b"\x80\x02" and b"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19" in head:
        raise CheckpointError(
            f"{path}: legacy (pre-1.6, non-zip) torch.save format is not supported. {_RESAVE_HINT}"
        )


def _materialize_all(
    obj: Any, zf: zipfile.ZipFile, prefix: str, big_endian: bool, path: Path
) -> Any:
    """Replace every :class:`LazyTensor` in ``obj`` by a numpy array, reading each storage once."""
    lazies: Dict[int, LazyTensor] = {}
    done: set = set()
    on_stack: set = set()

    def collect(o: Any, depth: int) -> None:
        if isinstance(o, LazyTensor):
            lazies[id(o)] = o
            return
        if not isinstance(o, (dict, list, tuple)) or id(o) in done:
            return
        if id(o) in on_stack or depth > 100:
            raise CheckpointError(f"{path}: checkpoint is self-referencing or nested too deeply.")
        on_stack.add(id(o))
        for v in o.values() if isinstance(o, dict) else o:
            collect(v, depth + 1)
        on_stack.discard(id(o))
        done.add(id(o))

    collect(obj, 0)
    names = set(zf.namelist())
    arrays: Dict[int, np.ndarray] = {}
    by_key: Dict[str, List[LazyTensor]] = {}
    for lz in lazies.values():
        by_key.setdefault(lz.storage.key, []).append(lz)
    for key, group in by_key.items():
        member = f"{prefix}data/{key}"
        if member not in names:
            raise CheckpointError(
                f"{path}: storage `{member}` named in data.pkl is not in the archive."
            )
        raw = zf.read(member)
        for lz in group:
            try:
                arrays[id(lz)] = _build_array(lz, raw, big_endian, path)
            except (ValueError, OverflowError, TypeError, KeyError) as exc:
                why = f"corrupt tensor record for storage `{key}` ({exc})"
                raise CheckpointError(f"{path}: {why}.") from exc
        del raw  # free each storage's bytes before reading the next

    handed_out: set = set()
    memo: Dict[int, Any] = {}

    def replace(o: Any) -> Any:
        if isinstance(o, LazyTensor):
            arr = arrays[id(o)]
            if id(o) in handed_out:  # the same tensor object used twice: give independent copies
                return arr.copy()
            handed_out.add(id(o))
            return arr
        if not isinstance(o, (dict, list, tuple)):
            return o
        if id(o) in memo:
            return memo[id(o)]
        if isinstance(o, dict):
            out: Any = OrderedDict() if isinstance(o, OrderedDict) else {}
            for k, v in o.items():
                out[k] = replace(v)
        elif isinstance(o, list):
            out = [replace(v) for v in o]
        else:
            out = tuple(replace(v) for v in o)
        memo[id(o)] = out
        return out

    return replace(obj)


def _build_array(lz: LazyTensor, raw: bytes, big_endian: bool, path: Path) -> np.ndarray:
    dtype = raw_dtype(lz.dtype_name, big_endian)
    count = len(raw) // dtype.itemsize
    base = np.frombuffer(raw, dtype=dtype, count=count)
    if any(s == 0 for s in lz.size):
        view = np.empty(lz.size, dtype=dtype)
    else:
        extent = lz.offset + sum((s - 1) * st for s, st in zip(lz.size, lz.stride)) + 1
        if extent > count:
            raise CheckpointError(
                f"{path}: corrupt tensor record - size {lz.size}, stride {lz.stride} and offset "
                f"{lz.offset} reach element {extent - 1} of storage `{lz.storage.key}`, which "
                f"holds only {count}."
            )
        view = np.lib.stride_tricks.as_strided(
            base[lz.offset :],
            shape=lz.size,
            strides=tuple(st * dtype.itemsize for st in lz.stride),
            writeable=False,
        )
    out = to_native(np.array(view, copy=True, order="C"), lz.dtype_name)
    if lz.conj:
        out = np.conj(out)
    if lz.neg:
        out = np.negative(out)
    return out


def read_torch_file(path: PathLike) -> Any:
    """Read a PyTorch zip checkpoint (``torch.save``, torch>=1.6) without torch, running no code.

    Tensors become numpy arrays (bfloat16/float8 as float32); dicts, lists, tuples, strings and
    numbers come back as themselves. Any other object in the pickle raises
    :class:`CheckpointError` before it is constructed or called.

    Args:
        path: the ``.bin``/``.pt``/``.pth`` file.

    Returns:
        The unpickled object (for a state dict: a ``dict`` of name -> ``np.ndarray``).

    Raises:
        CheckpointError: missing file, legacy (pre-1.6) or TorchScript format, corrupt archive, or
            a pickle that asks for anything beyond tensors and containers.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if not zipfile.is_zipfile(path):
        check_not_legacy_torch(path)
        raise CheckpointError(f"{path}: not a zip-based PyTorch checkpoint. {_RESAVE_HINT}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pkl_name = _find_pickle(names, path)
            prefix = pkl_name[: -len("data.pkl")]
            big_endian = False
            if f"{prefix}byteorder" in names:
                order = zf.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
                if order not in ("little", "big"):
                    raise CheckpointError(f"{path}: unknown byte order {order!r}.")
                big_endian = order == "big"
            with zf.open(pkl_name) as fh:
                unpickler = RestrictedUnpickler(fh, str(path))
                try:
                    obj = unpickler.load()
                except CheckpointError:
                    raise
                except Exception as exc:  # malformed pickles fail in many ways, none is a bug here
                    why = f"{type(exc).__name__}: {exc}"
                    raise CheckpointError(f"{path}: could not read data.pkl ({why}).") from exc
            return _materialize_all(obj, zf, prefix, big_endian, path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{path}: corrupt or unreadable zip archive ({exc}).") from exc


def read_torch_state(path: PathLike) -> Dict[str, np.ndarray]:
    """:func:`read_torch_file`, checked to be a state dict: ``{name: np.ndarray}`` and nothing else.

    Raises:
        CheckpointError: as :func:`read_torch_file`, or the file holds something else (a training
            checkpoint with nested dicts, a list...).
    """
    path = Path(path)
    obj = read_torch_file(path)
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        raise CheckpointError(f"{path}: expected a state dict (a dict of tensors), found a {kind}.")
    out: Dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: state dict key {key!r} is not a string.")
        if not isinstance(value, np.ndarray):
            hint = ""
            if isinstance(value, dict):
                hint = (" (a training checkpoint? read it with read_torch_file and pick the "
                        "model's entry)")
            kind = type(value).__name__
            raise CheckpointError(f"{path}: entry {key!r} is a {kind}, not a tensor{hint}.")
        out[key] = value
    return out
