"""Read and write model weight files with numpy only: no torch, no MindSpore, no pickled code run.

Supported inputs of :func:`load_state_dict`:

* ``*.safetensors`` files (any dtype; bfloat16 and float8 become float32, as numpy has neither);
* PyTorch's zip checkpoints (``*.bin``, ``*.pt``, ``*.pth``: ``torch.save`` since torch 1.6, and what
  ``transformers`` wrote with ``save_pretrained(safe_serialization=False)``), read with a restricted
  unpickler that only knows how to rebuild tensors and dicts; any other object in the pickle (``os.system``,
  ``builtins.eval``, a custom class...) makes it raise :class:`~mindtf.errors.CheckpointError` before
  anything is called;
* Hugging Face model directories: ``model.safetensors``, ``pytorch_model.bin`` and their sharded forms
  (``model.safetensors.index.json``, ``pytorch_model.bin.index.json``).

Writing is safetensors only (:func:`save_safetensors`, atomic).
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import struct
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from mindtf.errors import CheckpointError, InputError

__all__ = [
    "load_state_dict",
    "load_torch_file",
    "load_safetensors",
    "load_safetensors_metadata",
    "save_safetensors",
    "SAFE_WEIGHTS_NAME",
    "SAFE_WEIGHTS_INDEX_NAME",
    "WEIGHTS_NAME",
    "WEIGHTS_INDEX_NAME",
]

PathLike = Union[str, "os.PathLike[str]"]

#: File names a Hugging Face model directory may hold, in the order :func:`load_state_dict` tries them.
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
_DIR_CANDIDATES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME)

_TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_RESAVE_HINT = (
    "Re-save it with a recent torch (`torch.save(torch.load(path, weights_only=True), path)`, torch>=1.6 "
    "writes the zip format) or convert it to safetensors (`safetensors.torch.save_file(state_dict, "
    "'model.safetensors')`)."
)


# --------------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------------


def _reinterpret(arr: np.ndarray, dtype: Any) -> np.ndarray:
    """Same bytes, another dtype of the same itemsize (also for 0-d arrays)."""
    flat = np.array(arr, order="C").reshape(-1)
    return flat.view(dtype).reshape(arr.shape)


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32, exactly (bf16 is the top half of a float32)."""
    return _reinterpret(raw.astype(np.uint32) << np.uint32(16), np.float32)


def _f8e5m2_to_f32(raw: np.ndarray) -> np.ndarray:
    """float8_e5m2 bit patterns (uint8) -> float32, exactly (e5m2 is the top byte of a float16)."""
    return _reinterpret(raw.astype(np.uint16) << np.uint16(8), np.float16).astype(np.float32)


def _make_f8e4m3fn_table() -> np.ndarray:
    bits = np.arange(256, dtype=np.uint32)
    sign = np.where(bits & 0x80, -1.0, 1.0)
    exp = ((bits >> 3) & 0xF).astype(np.int64)
    man = (bits & 0x7).astype(np.float64)
    normal = (1.0 + man / 8.0) * np.exp2(exp - 7.0)
    subnormal = (man / 8.0) * np.exp2(-6.0)
    table = sign * np.where(exp == 0, subnormal, normal)
    table[(bits & 0x7F) == 0x7F] = np.nan  # e4m3fn: no infinities, S.1111.111 is NaN
    return table.astype(np.float32)


_F8E4M3FN_TABLE = _make_f8e4m3fn_table()


def _f8e4m3fn_to_f32(raw: np.ndarray) -> np.ndarray:
    """float8_e4m3fn bit patterns (uint8) -> float32, exactly."""
    return np.asarray(_F8E4M3FN_TABLE[raw])


def _nonzero_to_bool(raw: np.ndarray) -> np.ndarray:
    return np.asarray(raw != 0)


# torch dtype name -> (numpy dtype of the raw bytes, little-endian; converter to a numpy-native dtype)
_TORCH_DTYPES: Dict[str, Tuple[str, Optional[Callable[[np.ndarray], np.ndarray]]]] = {
    "float64": ("<f8", None),
    "float32": ("<f4", None),
    "float16": ("<f2", None),
    "bfloat16": ("<u2", _bf16_to_f32),
    "float8_e5m2": ("u1", _f8e5m2_to_f32),
    "float8_e4m3fn": ("u1", _f8e4m3fn_to_f32),
    "complex128": ("<c16", None),
    "complex64": ("<c8", None),
    "int64": ("<i8", None),
    "int32": ("<i4", None),
    "int16": ("<i2", None),
    "int8": ("i1", None),
    "uint64": ("<u8", None),
    "uint32": ("<u4", None),
    "uint16": ("<u2", None),
    "uint8": ("u1", None),
    "bool": ("u1", _nonzero_to_bool),
}
# aliases torch also pickles dtypes under
_TORCH_DTYPE_ALIASES = {
    "double": "float64",
    "float": "float32",
    "half": "float16",
    "cdouble": "complex128",
    "cfloat": "complex64",
    "long": "int64",
    "int": "int32",
    "short": "int16",
}

# legacy typed storage classes (`torch.FloatStorage` ...) -> dtype name
_STORAGE_CLASSES: Dict[str, str] = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "UntypedStorage": "uint8",  # bytes; the tensor's dtype comes with _rebuild_tensor_v3
}
_QUANTIZED_STORAGES = ("QInt8Storage", "QInt32Storage", "QUInt8Storage", "QUInt4x2Storage", "QUInt2x4Storage")


def _raw_dtype(dtype_name: str, big_endian: bool) -> np.dtype:
    dt = np.dtype(_TORCH_DTYPES[dtype_name][0])
    return dt.newbyteorder(">") if big_endian and dt.itemsize > 1 else dt


def _to_native(raw: np.ndarray, dtype_name: str) -> np.ndarray:
    """Raw values (any byte order) -> a writeable, C-contiguous array of a numpy-native dtype."""
    if not raw.dtype.isnative:
        raw = raw.astype(raw.dtype.newbyteorder("="))
    convert = _TORCH_DTYPES[dtype_name][1]
    out = convert(raw) if convert is not None else raw
    out = np.asarray(out)
    if not out.flags.writeable or not out.flags.c_contiguous:
        out = np.array(out, order="C")
    return out


# --------------------------------------------------------------------------------------------------
# PyTorch zip checkpoints
# --------------------------------------------------------------------------------------------------


class _TypeMarker:
    """What the restricted unpickler hands out for a storage class or a dtype: data, never callable."""

    __slots__ = ("kind", "name")

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind  # "storage", "dtype" or "tensor_type"
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"


class _StorageRef:
    """A storage named in the pickle (``persistent_load``): its key under ``<archive>/data/`` and dtype."""

    __slots__ = ("key", "dtype_name")

    def __init__(self, key: str, dtype_name: str) -> None:
        self.key = key
        self.dtype_name = dtype_name


class _LazyTensor:
    """A tensor described by the pickle; its bytes are read after unpickling (storage by storage)."""

    __slots__ = ("storage", "offset", "size", "stride", "dtype_name", "neg", "conj")

    def __init__(
        self,
        storage: _StorageRef,
        offset: int,
        size: Tuple[int, ...],
        stride: Tuple[int, ...],
        dtype_name: str,
    ) -> None:
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride
        self.dtype_name = dtype_name
        self.neg = False
        self.conj = False


def _check_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"corrupt checkpoint: {what} must be a non-negative int, got {value!r}")
    return value


def _check_shape(value: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(value, (tuple, list)):
        raise CheckpointError(f"corrupt checkpoint: {what} must be a tuple of ints, got {value!r}")
    return tuple(_check_int(v, what) for v in value)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for torch state dicts that resolves only a fixed list of names, to harmless stand-ins.

    Everything ``find_class`` returns is either a fresh ``functools.partial`` of a method of this
    instance, or an inert :class:`_TypeMarker`; nothing else can be named, so nothing else can be called.
    """

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file)
        self._source = source
        self._storages: Dict[str, _StorageRef] = {}
        # Each lookup returns a fresh functools.partial: its attributes are read-only and its __dict__ is
        # its own, so a BUILD opcode in the pickle cannot alter these functions for later loads.
        fns: Dict[Tuple[str, str], Callable[..., Any]] = {
            ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor_v3"): self._rebuild_tensor_v3,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self._rebuild_parameter_with_state,
            ("torch._tensor", "_rebuild_from_type_v2"): self._rebuild_from_type_v2,
            ("torch", "Size"): self._make_size,
            ("collections", "OrderedDict"): self._make_ordered_dict,
        }
        self._functions = fns
        self._tensor_types = {
            ("torch._tensor", "Tensor"): "Tensor",
            ("torch", "Tensor"): "Tensor",
            ("torch.nn.parameter", "Parameter"): "Parameter",
        }

    # -- name resolution ---------------------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        fn = self._functions.get((module, name))
        if fn is not None:
            return functools.partial(fn)
        if (module, name) in self._tensor_types:
            return _TypeMarker("tensor_type", self._tensor_types[(module, name)])
        if module in ("torch", "torch.storage") and name in _STORAGE_CLASSES:
            return _TypeMarker("storage", name)
        if module == "torch" and (name in _TORCH_DTYPES or name in _TORCH_DTYPE_ALIASES):
            return _TypeMarker("dtype", _TORCH_DTYPE_ALIASES.get(name, name))
        if module == "torch" and name in _QUANTIZED_STORAGES:
            raise CheckpointError(
                f"{self._source}: quantized tensors ({module}.{name}) are not supported; "
                "dequantize them in torch and save a float state dict."
            )
        raise CheckpointError(
            f"{self._source}: refusing to load - the pickle asks for `{module}.{name}`, which a plain "
            "state dict never needs (it may run code). Only tensors, dicts and numbers are allowed. "
            "If you trust the file, convert it to safetensors in a separate torch environment."
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise CheckpointError(f"{self._source}: unsupported persistent id {pid!r} in the pickle.")
        storage_type, key = pid[1], pid[2]
        if not (
            isinstance(storage_type, _TypeMarker)
            and storage_type.kind == "storage"
            and storage_type.name in _STORAGE_CLASSES
        ):
            raise CheckpointError(f"{self._source}: corrupt storage type {storage_type!r}.")
        if not isinstance(key, str) or not key or "/" in key or "\\" in key or key.startswith("."):
            raise CheckpointError(f"{self._source}: corrupt storage key {key!r}.")
        ref = self._storages.get(key)
        if ref is None:
            ref = self._storages[key] = _StorageRef(key, _STORAGE_CLASSES[storage_type.name])
        return ref

    # -- stand-ins for torch's rebuild functions ---------------------------------------------------
    def _lazy(self, storage: Any, offset: Any, size: Any, stride: Any, dtype_name: str) -> _LazyTensor:
        if not isinstance(storage, _StorageRef):
            kind = type(storage).__name__
            raise CheckpointError(f"{self._source}: corrupt tensor record (storage is a {kind}).")
        size_t = _check_shape(size, "tensor size")
        stride_t = _check_shape(stride, "tensor stride")
        if len(size_t) != len(stride_t):
            raise CheckpointError(f"{self._source}: corrupt tensor record (size {size_t}, stride {stride_t})")
        return _LazyTensor(storage, _check_int(offset, "storage offset"), size_t, stride_t, dtype_name)

    @staticmethod
    def _apply_metadata(tensor: _LazyTensor, metadata: Any) -> _LazyTensor:
        if isinstance(metadata, dict):
            tensor.neg = bool(metadata.get("neg", False))
            tensor.conj = bool(metadata.get("conj", False))
        return tensor

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any) -> _LazyTensor:
        dtype_name = storage.dtype_name if isinstance(storage, _StorageRef) else "uint8"
        return self._lazy(storage, offset, size, stride, dtype_name)

    def _rebuild_tensor_v2(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any = False,
        backward_hooks: Any = None,
        metadata: Any = None,
    ) -> _LazyTensor:
        return self._apply_metadata(self._rebuild_tensor(storage, offset, size, stride), metadata)

    def _rebuild_tensor_v3(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any,
        backward_hooks: Any,
        dtype: Any,
        metadata: Any = None,
    ) -> _LazyTensor:
        if not (isinstance(dtype, _TypeMarker) and dtype.kind == "dtype" and dtype.name in _TORCH_DTYPES):
            raise CheckpointError(f"{self._source}: unsupported tensor dtype {dtype!r}.")
        return self._apply_metadata(self._lazy(storage, offset, size, stride, dtype.name), metadata)

    def _rebuild_parameter(self, data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Any:
        if not isinstance(data, _LazyTensor):
            raise CheckpointError(f"{self._source}: corrupt parameter record.")
        return data

    def _rebuild_parameter_with_state(
        self, data: Any, requires_grad: Any = False, backward_hooks: Any = None, state: Any = None
    ) -> Any:
        return self._rebuild_parameter(data)

    def _rebuild_from_type_v2(self, func: Any, new_type: Any, args: Any, state: Any = None) -> Any:
        allowed = (
            self._rebuild_tensor,
            self._rebuild_tensor_v2,
            self._rebuild_tensor_v3,
            self._rebuild_parameter,
        )
        if not (isinstance(new_type, _TypeMarker) and new_type.kind == "tensor_type"):
            raise CheckpointError(f"{self._source}: tensor subclass {new_type!r} is not supported.")
        if not isinstance(func, functools.partial) or func.func not in allowed or not isinstance(args, tuple):
            raise CheckpointError(f"{self._source}: corrupt tensor record.")
        return func(*args)

    @staticmethod
    def _make_size(*args: Any) -> Tuple[int, ...]:
        return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)

    @staticmethod
    def _make_ordered_dict(*args: Any) -> "OrderedDict[Any, Any]":
        if args and not isinstance(args[0], (list, tuple, dict)):
            raise CheckpointError("corrupt checkpoint: bad OrderedDict record.")
        return OrderedDict(*args[:1])


def _find_pickle(names: List[str], path: Path) -> str:
    """The archive's ``<folder>/data.pkl`` (the folder name varies: ``archive``, the file's stem...)."""
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise CheckpointError(
            f"{path}: this is a TorchScript archive (torch.jit.save), not a state dict. Save "
            "`model.state_dict()` with torch.save or safetensors instead."
        )
    pkls = sorted((n for n in names if n.endswith("/data.pkl") and n.count("/") == 1), key=len)
    if not pkls:
        raise CheckpointError(f"{path}: zip file without a `<name>/data.pkl` entry: not a PyTorch checkpoint.")
    return pkls[0]


def _looks_like_legacy_torch(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(32)
    # torch<1.6 starts with the pickled magic number 0x1950a86a20f9469cfc6c (pickle protocol 2 long)
    return head[:2] == b"\x80\x02" and b"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19" in head


def _materialize_all(obj: Any, zf: zipfile.ZipFile, prefix: str, big_endian: bool, path: Path) -> Any:
    """Replace every :class:`_LazyTensor` in ``obj`` by a numpy array, reading each storage once."""
    lazies: Dict[int, _LazyTensor] = {}
    done: set = set()
    on_stack: set = set()

    def collect(o: Any, depth: int) -> None:
        if isinstance(o, _LazyTensor):
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
    by_key: Dict[str, List[_LazyTensor]] = {}
    for lz in lazies.values():
        by_key.setdefault(lz.storage.key, []).append(lz)
    for key, group in by_key.items():
        member = f"{prefix}data/{key}"
        if member not in names:
            raise CheckpointError(f"{path}: storage `{member}` named in data.pkl is not in the archive.")
        raw = zf.read(member)
        for lz in group:
            try:
                arrays[id(lz)] = _build_array(lz, raw, big_endian, path)
            except (ValueError, OverflowError, TypeError, KeyError) as exc:
                raise CheckpointError(f"{path}: corrupt tensor record for storage `{key}` ({exc}).") from exc
        del raw  # free each storage's bytes before reading the next

    handed_out: set = set()
    memo: Dict[int, Any] = {}

    def replace(o: Any) -> Any:
        if isinstance(o, _LazyTensor):
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


def _build_array(lz: _LazyTensor, raw: bytes, big_endian: bool, path: Path) -> np.ndarray:
    dtype = _raw_dtype(lz.dtype_name, big_endian)
    count = len(raw) // dtype.itemsize
    base = np.frombuffer(raw, dtype=dtype, count=count)
    if any(s == 0 for s in lz.size):
        view = np.empty(lz.size, dtype=dtype)
    else:
        extent = lz.offset + sum((s - 1) * st for s, st in zip(lz.size, lz.stride)) + 1
        if extent > count:
            raise CheckpointError(
                f"{path}: corrupt tensor record - size {lz.size}, stride {lz.stride} and offset {lz.offset} "
                f"reach element {extent - 1} of storage `{lz.storage.key}`, which holds only {count}."
            )
        view = np.lib.stride_tricks.as_strided(
            base[lz.offset :],
            shape=lz.size,
            strides=tuple(st * dtype.itemsize for st in lz.stride),
            writeable=False,
        )
    out = _to_native(np.array(view, copy=True, order="C"), lz.dtype_name)
    if lz.conj:
        out = np.conj(out)
    if lz.neg:
        out = np.negative(out)
    return out


def load_torch_file(path: PathLike) -> Any:
    """Load a PyTorch zip checkpoint (``torch.save``, torch>=1.6) without torch and without running code.

    Tensors become numpy arrays (bfloat16/float8 as float32); dicts, lists, tuples, strings and numbers
    come back as themselves. Any other object in the pickle raises :class:`CheckpointError` before it
    is constructed or called.

    Args:
        path: the ``.bin``/``.pt``/``.pth`` file.

    Returns:
        The unpickled object (for a state dict: a ``dict`` of name -> ``np.ndarray``).

    Raises:
        CheckpointError: missing file, legacy (pre-1.6) or TorchScript format, corrupt archive, or a
            pickle that asks for anything beyond tensors and containers.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if not zipfile.is_zipfile(path):
        if _looks_like_legacy_torch(path):
            raise CheckpointError(
                f"{path}: legacy (pre-1.6, non-zip) torch.save format is not supported. {_RESAVE_HINT}"
            )
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
                unpickler = _RestrictedUnpickler(fh, str(path))
                try:
                    obj = unpickler.load()
                except CheckpointError:
                    raise
                except Exception as exc:  # malformed pickles fail in many ways; none of them is a bug here
                    why = f"{type(exc).__name__}: {exc}"
                    raise CheckpointError(f"{path}: could not read data.pkl ({why}).") from exc
            return _materialize_all(obj, zf, prefix, big_endian, path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{path}: corrupt or unreadable zip archive ({exc}).") from exc


def _as_state_dict(obj: Any, path: Path) -> Dict[str, np.ndarray]:
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
                hint = " (a training checkpoint? read it with load_torch_file and pick the model's entry)"
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor{hint}.")
        out[key] = value
    return out


# --------------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------------

# safetensors dtype -> torch dtype name (to reuse the raw decoding above)
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


def _read_safetensors_header(path: Path) -> Tuple[Dict[str, Any], int]:
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


def _load_safetensors_raw(path: Path, header: Dict[str, Any], data_start: int) -> Dict[str, np.ndarray]:
    """Own reader for dtypes numpy lacks (bfloat16, float8): decodes them to float32."""
    size = path.stat().st_size - data_start
    out: Dict[str, np.ndarray] = {}
    with open(path, "rb") as fh:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                st_dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"{path}: corrupt header entry for {name!r}.") from exc
            if st_dtype not in _SAFETENSORS_DTYPES:
                raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {st_dtype}.")
            dtype_name = _SAFETENSORS_DTYPES[st_dtype]
            dtype = _raw_dtype(dtype_name, big_endian=False)
            shape = _check_shape(shape, f"shape of {name!r}")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if not (0 <= begin <= end <= size and end - begin == nbytes):
                raise CheckpointError(f"{path}: corrupt data offsets for {name!r}.")
            fh.seek(data_start + begin)
            raw = np.frombuffer(fh.read(nbytes), dtype=dtype).reshape(shape)
            out[name] = _to_native(raw, dtype_name)
    return out


def load_safetensors(path: PathLike) -> Dict[str, np.ndarray]:
    """Load every tensor of a ``.safetensors`` file as numpy arrays.

    Uses ``safetensors.numpy``; files holding bfloat16 or float8 tensors (which numpy cannot represent)
    are decoded here instead, to float32, exactly.

    Raises:
        CheckpointError: missing or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"safetensors file not found: {path}")
    header, data_start = _read_safetensors_header(path)
    dtypes = {v.get("dtype") for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    if dtypes <= _NUMPY_NATIVE_SAFETENSORS:
        from safetensors.numpy import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # safetensors raises its own SafetensorError / OSError variants
            raise CheckpointError(f"{path}: could not read safetensors file ({exc}).") from exc
    return _load_safetensors_raw(path, header, data_start)


def load_safetensors_metadata(path: PathLike) -> Dict[str, str]:
    """The ``__metadata__`` string map stored in a ``.safetensors`` file header (``{}`` if none)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"safetensors file not found: {path}")
    header, _ = _read_safetensors_header(path)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt __metadata__ in header.")
    return {str(k): str(v) for k, v in meta.items()}


def save_safetensors(
    state: Mapping[str, np.ndarray], path: PathLike, metadata: Optional[Mapping[str, str]] = None
) -> None:
    """Write ``state`` to a ``.safetensors`` file, atomically.

    The data go to a temporary file in the same directory, which then replaces ``path`` with
    ``os.replace``: readers see either the old file or the complete new one, never a partial write.

    Args:
        state: tensor name -> numpy array (any numeric or bool dtype; non-contiguous arrays are fine).
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
            raise InputError(f"save_safetensors: tensor names must be strings, got {key!r}.")
        if not isinstance(value, np.ndarray):
            raise InputError(
                f"save_safetensors: {key!r} is a {type(value).__name__}; convert it with np.asarray first."
            )
        # (np.ascontiguousarray would turn 0-d arrays into shape (1,))
        tensors[key] = value if value.flags.c_contiguous else np.array(value, order="C")
    meta: Optional[Dict[str, str]] = None
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise InputError("save_safetensors: metadata must map strings to strings.")
        meta = dict(metadata)
    try:
        payload = st_save(tensors, metadata=meta)
    except Exception as exc:
        raise CheckpointError(f"could not serialize tensors for {path}: {exc}") from exc

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


# --------------------------------------------------------------------------------------------------
# Front door
# --------------------------------------------------------------------------------------------------


def _safe_shard_path(directory: Path, name: Any, index_path: Path) -> Path:
    if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in Path(name).parts:
        raise CheckpointError(f"{index_path}: invalid shard file name {name!r} in weight_map.")
    return directory / name


def _load_sharded(index_path: Path) -> Dict[str, np.ndarray]:
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
    missing = [s for s in shards if not _safe_shard_path(index_path.parent, s, index_path).is_file()]
    if missing:
        raise CheckpointError(
            f"{index_path}: shard file(s) missing in {index_path.parent}: {', '.join(sorted(missing))}."
        )
    out: Dict[str, np.ndarray] = {}
    for shard, keys in shards.items():
        part = _load_file(_safe_shard_path(index_path.parent, shard, index_path))
        absent = [k for k in keys if k not in part]
        if absent:
            raise CheckpointError(
                f"{index_path}: shard {shard} lacks {len(absent)} tensor(s) the index puts there, "
                f"e.g. {absent[0]!r}."
            )
        for k in keys:
            out[k] = part[k]
    return out


def _load_file(path: Path) -> Dict[str, np.ndarray]:
    name = path.name
    if name.endswith(".index.json"):
        return _load_sharded(path)
    if name.endswith(".safetensors"):
        return load_safetensors(path)
    if name.endswith(_TORCH_SUFFIXES):
        return _as_state_dict(load_torch_file(path), path)
    # unknown suffix: sniff the content
    if zipfile.is_zipfile(path):
        return _as_state_dict(load_torch_file(path), path)
    try:
        _read_safetensors_header(path)
    except CheckpointError:
        if _looks_like_legacy_torch(path):
            raise CheckpointError(
                f"{path}: legacy (pre-1.6, non-zip) torch.save format is not supported. {_RESAVE_HINT}"
            ) from None
        raise CheckpointError(
            f"{path}: unsupported weight file format; expected .safetensors, a PyTorch zip checkpoint "
            "(.bin/.pt/.pth) or a *.index.json of shards."
        ) from None
    return load_safetensors(path)


def load_state_dict(path: PathLike) -> Dict[str, np.ndarray]:
    """Load model weights as ``{name: np.ndarray}`` from a file or a Hugging Face model directory.

    Args:
        path: a ``.safetensors`` file, a PyTorch zip checkpoint (``.bin``/``.pt``/``.pth``), a shard index
            (``*.index.json``), or a directory holding one of, in order of preference,
            ``model.safetensors``, ``model.safetensors.index.json``, ``pytorch_model.bin``,
            ``pytorch_model.bin.index.json``.

    Returns:
        Tensor name -> numpy array (writeable, C-contiguous). bfloat16/float8 tensors are returned as
        float32; tensors sharing storage in the file come back as independent arrays.

    Raises:
        CheckpointError: nothing found (the message lists what was looked for), an unsupported or
            legacy format, a corrupt file, or a pickle that would run code.
    """
    path = Path(path)
    if path.is_dir():
        for name in _DIR_CANDIDATES:
            if (path / name).is_file():
                return _load_file(path / name)
        raise CheckpointError(
            f"no weights found in directory {path}: looked for {', '.join(_DIR_CANDIDATES)}."
        )
    if not path.exists():
        raise CheckpointError(
            f"weights not found: {path} does not exist (expected a .safetensors/.bin/.pt/.pth file or a "
            f"model directory with one of {', '.join(_DIR_CANDIDATES)})."
        )
    return _load_file(path)
