"""Read and write ``.safetensors`` files as ``{name: np.ndarray}`` (numpy only, no pickle at all).

A safetensors file is a JSON header and the tensors' raw bytes::

    8 bytes   N, little-endian uint64: the header's length
    N bytes   JSON header {"wte.weight": {"dtype": "F32", "shape": [50257, 768],
                                          "data_offsets": [begin, end]},
                           ...,
                           "__metadata__": {"format": "pt"}}     optional string -> string map
    rest      each tensor's bytes, little-endian, C order, at [begin, end) after the header

Reading uses ``safetensors.numpy`` when every dtype is one numpy has; files holding bfloat16 or
float8 tensors (``BF16``, ``F8_E4M3``, ``F8_E5M2``: what torch writes for LLMs) are decoded here
instead, to float32, exactly (see :mod:`mindtf.weights.dtypes`).

Writing (:func:`write_safetensors`) is atomic: a temporary file in the same directory is renamed
over the destination, so a reader sees the old file or the complete new one, never a partial write.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from mindtf.errors import CheckpointError, InputError
from mindtf.weights.dtypes import check_shape, raw_dtype, to_native

__all__ = ["read_safetensors", "read_safetensors_metadata", "write_safetensors", "is_safetensors"]

PathLike = Union[str, "os.PathLike[str]"]

# safetensors dtype -> torch dtype name (the names mindtf.weights.dtypes decodes)
_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3": "float8_e4m3fn",
    "C64": "complex64",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
}
_NUMPY_NATIVE_SAFETENSORS = {k for k in _SAFETENSORS_DTYPES if not k.startswith(("BF", "F8"))}
_MAX_HEADER = 100 * 1024 * 1024


def _read_header(path: Path) -> Tuple[Dict[str, Any], int]:
    """The JSON header of a safetensors file and the byte offset its data starts at."""
    try:
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) != 8:
                raise CheckpointError(f"{path}: file too short to be safetensors.")
            (n,) = struct.unpack("<Q", prefix)
            if n > _MAX_HEADER:
                raise CheckpointError(f"{path}: not a safetensors file (header length {n}).")
            header = json.loads(fh.read(n).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not a valid safetensors file ({exc}).") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a valid safetensors file (header is not an object).")
    return header, 8 + n


def is_safetensors(path: PathLike) -> bool:
    """Whether ``path`` starts with a readable safetensors header (whatever its name)."""
    try:
        _read_header(Path(path))
    except CheckpointError:
        return False
    return True


def _read_raw(path: Path, header: Dict[str, Any], data_start: int) -> Dict[str, np.ndarray]:
    """Own reader for dtypes numpy lacks (bfloat16, float8): decodes them to float32."""
    size = path.stat().st_size - data_start
    out: Dict[str, np.ndarray] = {}
    with open(path, "rb") as fh:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                st_dtype, shape = info["dtype"], tuple(info["shape"])
                begin, end = info["data_offsets"]
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"{path}: corrupt header entry for {name!r}.") from exc
            if st_dtype not in _SAFETENSORS_DTYPES:
                raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {st_dtype}.")
            dtype_name = _SAFETENSORS_DTYPES[st_dtype]
            dtype = raw_dtype(dtype_name, big_endian=False)
            shape = check_shape(shape, f"shape of {name!r}")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if not (0 <= begin <= end <= size and end - begin == nbytes):
                raise CheckpointError(f"{path}: corrupt data offsets for {name!r}.")
            fh.seek(data_start + begin)
            raw = np.frombuffer(fh.read(nbytes), dtype=dtype).reshape(shape)
            out[name] = to_native(raw, dtype_name)
    return out


def read_safetensors(path: PathLike) -> Dict[str, np.ndarray]:
    """Read every tensor of a ``.safetensors`` file as numpy arrays.

    Uses ``safetensors.numpy``; files holding bfloat16 or float8 tensors (which numpy cannot
    represent) are decoded here instead, to float32, exactly.

    Raises:
        CheckpointError: missing or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"safetensors file not found: {path}")
    header, data_start = _read_header(path)
    entries = [v for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    dtypes = {v.get("dtype") for v in entries}
    if dtypes <= _NUMPY_NATIVE_SAFETENSORS:
        from safetensors.numpy import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # safetensors raises its own SafetensorError / OSError variants
            raise CheckpointError(f"{path}: could not read safetensors file ({exc}).") from exc
    return _read_raw(path, header, data_start)


def read_safetensors_metadata(path: PathLike) -> Dict[str, str]:
    """The ``__metadata__`` string map stored in a ``.safetensors`` file header (``{}`` if none)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"safetensors file not found: {path}")
    header, _ = _read_header(path)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt __metadata__ in header.")
    return {str(k): str(v) for k, v in meta.items()}


def _replace_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary file next to ``path``, then rename it to ``path``."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise


def write_safetensors(
    state: Mapping[str, np.ndarray], path: PathLike, metadata: Optional[Mapping[str, str]] = None
) -> None:
    """Write ``state`` to a ``.safetensors`` file, atomically.

    The data go to a temporary file in the same directory, which then replaces ``path`` with
    ``os.replace``: readers see either the old file or the complete new one, never a partial write.

    Args:
        state: tensor name -> numpy array (any numeric or bool dtype; non-contiguous arrays are
            fine).
        path: destination file; its directory must exist.
        metadata: optional string -> string map stored in the header (e.g. ``{"format": "np"}``).

    Raises:
        InputError: a key, value or metadata entry of the wrong type.
        CheckpointError: safetensors refused the data (e.g. an object dtype) or the write failed.
    """
    from safetensors.numpy import save as st_save

    path = Path(path)
    tensors: Dict[str, np.ndarray] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise InputError(f"write_safetensors: tensor names must be strings, got {key!r}.")
        if not isinstance(value, np.ndarray):
            raise InputError(
                f"write_safetensors: {key!r} is a {type(value).__name__}; convert it with "
                "np.asarray first."
            )
        # (np.ascontiguousarray would turn 0-d arrays into shape (1,))
        tensors[key] = value if value.flags.c_contiguous else np.array(value, order="C")
    meta: Optional[Dict[str, str]] = None
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise InputError("write_safetensors: metadata must map strings to strings.")
        meta = dict(metadata)
    try:
        payload = st_save(tensors, metadata=meta)
    except Exception as exc:
        raise CheckpointError(f"could not serialize tensors for {path}: {exc}") from exc
    _replace_atomically(path, payload)
