"""Element types of weight files, decoded to numpy-native arrays (shared by both file formats).

A tensor in a file is raw bytes plus a dtype name. numpy has most of the dtypes torch and
safetensors write; for the others the bytes are read as unsigned integers of the same width and
converted, exactly, to a dtype numpy has::

    file bytes --np.frombuffer(raw_dtype(name))--> raw values --to_native(raw, name)--> array
                                                     (any byte order)                 (native order,
                                                                                       C-contiguous,
                                                                                       writeable)

    bfloat16       (uint16 bits) -> float32   bf16 is the top half of a float32
    float8_e5m2    (uint8 bits)  -> float32   e5m2 is the top byte of a float16
    float8_e4m3fn  (uint8 bits)  -> float32   through a 256-entry table (no infinities)
    bool           (uint8)       -> bool      any non-zero byte is True

Dtype names are torch's (``float32``, ``bfloat16``...): :mod:`mindtf.weights.safetensors` maps its
own names (``F32``, ``BF16``...) onto them.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from mindtf.errors import CheckpointError

__all__ = [
    "TORCH_DTYPES",
    "TORCH_DTYPE_ALIASES",
    "STORAGE_CLASSES",
    "QUANTIZED_STORAGES",
    "raw_dtype",
    "to_native",
    "check_int",
    "check_shape",
]


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
    """The float32 value of each of the 256 float8_e4m3fn bit patterns ``S.EEEE.MMM``."""
    bits = np.arange(256, dtype=np.uint32)
    sign = np.where(bits & 0x80, -1.0, 1.0)
    exp = ((bits >> 3) & 0xF).astype(np.int64)
    man = (bits & 0x7).astype(np.float64)
    normal = (1.0 + man / 8.0) * np.exp2(exp - 7.0)
    subnormal = (man / 8.0) * np.exp2(-6.0)
    table = sign * np.where(exp == 0, subnormal, normal)
    table[(bits & 0x7F) == 0x7F] = np.nan  # e4m3fn: no infinities, S.1111.111 is NaN
    return table.astype(np.float32)


_F8E4M3FN_TABLE = _make_f8e4m3fn_table()  # (256,)


def _f8e4m3fn_to_f32(raw: np.ndarray) -> np.ndarray:
    """float8_e4m3fn bit patterns (uint8) -> float32, exactly."""
    return np.asarray(_F8E4M3FN_TABLE[raw])


def _nonzero_to_bool(raw: np.ndarray) -> np.ndarray:
    return np.asarray(raw != 0)


#: torch dtype name -> (numpy dtype of the raw bytes, little-endian; converter to a native dtype)
TORCH_DTYPES: Dict[str, Tuple[str, Optional[Callable[[np.ndarray], np.ndarray]]]] = {
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

#: other names torch also pickles dtypes under
TORCH_DTYPE_ALIASES = {
    "double": "float64",
    "float": "float32",
    "half": "float16",
    "cdouble": "complex128",
    "cfloat": "complex64",
    "long": "int64",
    "int": "int32",
    "short": "int16",
}

#: legacy typed storage classes (``torch.FloatStorage`` ...) -> dtype name
STORAGE_CLASSES: Dict[str, str] = {
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

#: storage classes of quantized tensors: refused with a message that says how to convert them
QUANTIZED_STORAGES = (
    "QInt8Storage",
    "QInt32Storage",
    "QUInt8Storage",
    "QUInt4x2Storage",
    "QUInt2x4Storage",
)


def raw_dtype(dtype_name: str, big_endian: bool) -> np.dtype:
    """The numpy dtype to read a ``dtype_name`` tensor's bytes with (then :func:`to_native`)."""
    dt = np.dtype(TORCH_DTYPES[dtype_name][0])
    return dt.newbyteorder(">") if big_endian and dt.itemsize > 1 else dt


def to_native(raw: np.ndarray, dtype_name: str) -> np.ndarray:
    """Raw values (any byte order) -> a writeable, C-contiguous array of a numpy-native dtype."""
    if not raw.dtype.isnative:
        raw = raw.astype(raw.dtype.newbyteorder("="))
    convert = TORCH_DTYPES[dtype_name][1]
    out = convert(raw) if convert is not None else raw
    out = np.asarray(out)
    if not out.flags.writeable or not out.flags.c_contiguous:
        out = np.array(out, order="C")
    return out


def check_int(value: Any, what: str) -> int:
    """``value`` if it is a non-negative int (a size, stride or offset read from a file)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(
            f"corrupt checkpoint: {what} must be a non-negative int, got {value!r}"
        )
    return value


def check_shape(value: Any, what: str) -> Tuple[int, ...]:
    """``value`` as a tuple of non-negative ints (a shape or strides read from a file)."""
    if not isinstance(value, (tuple, list)):
        raise CheckpointError(f"corrupt checkpoint: {what} must be a tuple of ints, got {value!r}")
    return tuple(check_int(v, what) for v in value)
