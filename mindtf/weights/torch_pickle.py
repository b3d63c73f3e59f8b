"""The restricted unpickler for ``data.pkl`` inside PyTorch zip checkpoints: tensors and dicts only.

``torch.save`` pickles a state dict as calls to a few torch functions; for each tensor::

    torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, metadata)
                                    |
                                    persistent id ("storage", FloatStorage, "0", "cpu", numel):
                                    the bytes are in the archive under <folder>/data/0

A normal unpickler imports and calls whatever the pickle names (``os.system`` too). This one
resolves only a fixed list of names, each to a harmless stand-in::

    torch._utils._rebuild_tensor*, _rebuild_parameter*,   -> a method of this unpickler that returns
    torch._tensor._rebuild_from_type_v2                      a LazyTensor (storage, offset, size,
                                                             stride, dtype): no byte is read yet
    torch.FloatStorage ..., torch.float32 ..., torch.Tensor -> an inert _TypeMarker (data)
    torch.Size, collections.OrderedDict                    -> tuple / OrderedDict
    anything else                                          -> CheckpointError before it is called

:mod:`mindtf.weights.torch_zip` then reads each storage once and turns every :class:`LazyTensor`
into a numpy array.
"""

from __future__ import annotations

import functools
import pickle
from collections import OrderedDict
from typing import Any, Callable, Dict, Tuple

from mindtf.errors import CheckpointError
from mindtf.weights.dtypes import (
    QUANTIZED_STORAGES,
    STORAGE_CLASSES,
    TORCH_DTYPE_ALIASES,
    TORCH_DTYPES,
    check_int,
    check_shape,
)

__all__ = ["RestrictedUnpickler", "LazyTensor", "StorageRef"]


class _TypeMarker:
    """What the unpickler hands out for a storage class or a dtype: data, never callable."""

    __slots__ = ("kind", "name")

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind  # "storage", "dtype" or "tensor_type"
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"


class StorageRef:
    """A storage named in the pickle (``persistent_load``): key under ``<folder>/data/``, dtype."""

    __slots__ = ("key", "dtype_name")

    def __init__(self, key: str, dtype_name: str) -> None:
        self.key = key
        self.dtype_name = dtype_name


class LazyTensor:
    """A tensor described by the pickle; its bytes are read after unpickling, storage by storage."""

    __slots__ = ("storage", "offset", "size", "stride", "dtype_name", "neg", "conj")

    def __init__(
        self,
        storage: StorageRef,
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


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for torch state dicts: resolves only a fixed list of names, to harmless stand-ins.

    Everything ``find_class`` returns is either a fresh ``functools.partial`` of a method of this
    instance, or an inert :class:`_TypeMarker`; nothing else can be named, so nothing else can be
    called.
    """

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file)
        self._source = source
        self._storages: Dict[str, StorageRef] = {}
        # Each lookup returns a fresh functools.partial: its attributes are read-only and its
        # __dict__ is its own, so a BUILD opcode in the pickle cannot alter these functions for
        # later loads.
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
        if module in ("torch", "torch.storage") and name in STORAGE_CLASSES:
            return _TypeMarker("storage", name)
        if module == "torch" and (name in TORCH_DTYPES or name in TORCH_DTYPE_ALIASES):
            return _TypeMarker("dtype", TORCH_DTYPE_ALIASES.get(name, name))
        if module == "torch" and name in QUANTIZED_STORAGES:
            raise CheckpointError(
                f"{self._source}: quantized tensors ({module}.{name}) are not supported; "
                "dequantize them in torch and save a float state dict."
            )
        raise CheckpointError(
            f"{self._source}: refusing to load - the pickle asks for `{module}.{name}`, which a "
            "plain state dict never needs (it may run code). Only tensors, dicts and numbers are "
            "allowed. "
            "If you trust the file, convert it to safetensors in a separate torch environment."
        )

    def persistent_load(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise CheckpointError(
                f"{self._source}: unsupported persistent id {pid!r} in the pickle."
            )
        storage_type, key = pid[1], pid[2]
        if not (
            isinstance(storage_type, _TypeMarker)
            and storage_type.kind == "storage"
            and storage_type.name in STORAGE_CLASSES
        ):
            raise CheckpointError(f"{self._source}: corrupt storage type {storage_type!r}.")
        if not isinstance(key, str) or not key or "/" in key or "\\" in key or key.startswith("."):
            raise CheckpointError(f"{self._source}: corrupt storage key {key!r}.")
        ref = self._storages.get(key)
        if ref is None:
            ref = self._storages[key] = StorageRef(key, STORAGE_CLASSES[storage_type.name])
        return ref

    # -- stand-ins for torch's rebuild functions ---------------------------------------------------
    def _lazy(
        self, storage: Any, offset: Any, size: Any, stride: Any, dtype_name: str
    ) -> LazyTensor:
        if not isinstance(storage, StorageRef):
            kind = type(storage).__name__
            raise CheckpointError(f"{self._source}: corrupt tensor record (storage is a {kind}).")
        size_t = check_shape(size, "tensor size")
        stride_t = check_shape(stride, "tensor stride")
        if len(size_t) != len(stride_t):
            raise CheckpointError(
                f"{self._source}: corrupt tensor record (size {size_t}, stride {stride_t})"
            )
        offset_i = check_int(offset, "storage offset")
        return LazyTensor(storage, offset_i, size_t, stride_t, dtype_name)

    @staticmethod
    def _apply_metadata(tensor: LazyTensor, metadata: Any) -> LazyTensor:
        if isinstance(metadata, dict):
            tensor.neg = bool(metadata.get("neg", False))
            tensor.conj = bool(metadata.get("conj", False))
        return tensor

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any) -> LazyTensor:
        dtype_name = storage.dtype_name if isinstance(storage, StorageRef) else "uint8"
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
    ) -> LazyTensor:
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
    ) -> LazyTensor:
        is_dtype = isinstance(dtype, _TypeMarker) and dtype.kind == "dtype"
        if not (is_dtype and dtype.name in TORCH_DTYPES):
            raise CheckpointError(f"{self._source}: unsupported tensor dtype {dtype!r}.")
        return self._apply_metadata(self._lazy(storage, offset, size, stride, dtype.name), metadata)

    def _rebuild_parameter(
        self, data: Any, requires_grad: Any = False, backward_hooks: Any = None
    ) -> Any:
        if not isinstance(data, LazyTensor):
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
        known = isinstance(func, functools.partial) and func.func in allowed
        if not known or not isinstance(args, tuple):
            raise CheckpointError(f"{self._source}: corrupt tensor record.")
        return func(*args)

    @staticmethod
    def _make_size(*args: Any) -> Tuple[int, ...]:
        if len(args) == 1 and isinstance(args[0], (tuple, list)):
            return tuple(args[0])  # torch.Size((2, 3))
        return tuple(args)

    @staticmethod
    def _make_ordered_dict(*args: Any) -> "OrderedDict[Any, Any]":
        if args and not isinstance(args[0], (list, tuple, dict)):
            raise CheckpointError("corrupt checkpoint: bad OrderedDict record.")
        return OrderedDict(*args[:1])

