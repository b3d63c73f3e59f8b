"""What every mindtf model owns: its config, its files and its state.

A model class mixes in :class:`Pretrained` and says how its config reads and writes ``config.json``;
everything else -- the directory format, strict loading with a clear report, ``from_pretrained`` and
``save_pretrained`` -- is written once, here::

    model directory                       Pretrained method
    ├── config.json       <-- config_to_json() / config_from_json()   (per model)
    └── model.safetensors <-- export_state() / import_state()         (per model: file names)
                               state_dict() / load_state_dict()       (mindtf names, strict)

Training checkpoints, ``load_model`` and the CLI only call these methods: no code outside a model
knows which model it is handling.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Dict, Optional, Tuple, Union

import numpy as np

from mindspore import Tensor

from mindtf.errors import CheckpointError, InputError
from mindtf.fileio import write_text_atomically
from mindtf.weights import SAFE_WEIGHTS_NAME, read_state, write_safetensors
from mindtf.weights.state import copy_into, state_of

__all__ = ["Pretrained", "CONFIG_NAME", "read_config", "as_token_ids", "check_token_ids"]

CONFIG_NAME = "config.json"
PathLike = Union[str, "os.PathLike[str]"]


class Pretrained:
    """Mixin for ``nn.Cell`` models with a dataclass ``config`` (see the module docstring)."""

    #: ``model_type`` values this class reads; the first is the one it writes
    model_types: ClassVar[Tuple[str, ...]] = ()
    #: the dataclass of ``self.config``
    config_class: ClassVar[type] = object
    #: what to check when a checkpoint does not match (appended to the error)
    state_hint: ClassVar[str] = "Check that config.json belongs to these weights."

    # ------------------------------------------------------------------ config.json
    def config_to_json(self) -> dict:
        return {"model_type": self.model_types[0], "mindtf": self.config.to_dict()}

    @classmethod
    def config_from_json(cls, d: dict):
        return cls.config_class.from_dict(d["mindtf"])

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, np.ndarray]:
        """Parameters as numpy arrays, by mindtf name."""
        return state_of(self)

    def import_state(self, state: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Map a state read from a file to mindtf names (identity unless a model overrides it)."""
        return state

    def export_state(self) -> Dict[str, np.ndarray]:
        """The state as it is written to ``model.safetensors`` (inverse of :meth:`import_state`)."""
        return self.state_dict()

    def load_state_dict(self, state: Dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy ``state`` (mindtf names, or the file names :meth:`import_state` understands) into
        the parameters. With ``strict``, raises :class:`~mindtf.errors.CheckpointError` listing
        missing, unexpected and mis-shaped keys."""
        copy_into(self, self.import_state(dict(state)), strict=strict, hint=self.state_hint)

    # ------------------------------------------------------------------ directories
    def save_pretrained(self, path: PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into the directory ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_safetensors(self.export_state(), path / SAFE_WEIGHTS_NAME,
                          metadata={"format": "pt"})
        write_text_atomically(path / CONFIG_NAME, json.dumps(self.config_to_json(), indent=2))
        return path

    @classmethod
    def from_pretrained(cls, path: PathLike, **overrides):
        """Build the model saved in directory ``path`` (``config.json`` + weights), in eval mode.

        ``overrides`` replace config fields, e.g. ``dropout=0.0``.
        """
        path = Path(path)
        try:
            config = cls.config_class.from_dict({
                **cls.config_from_json(read_config(path)).to_dict(), **overrides})
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # ConfigError included
            raise CheckpointError(f"{Path(path) / CONFIG_NAME} does not describe a "
                                  f"{cls.__name__} ({type(exc).__name__}: {exc}); use the "
                                  "config.json written with these weights.") from None
        model = cls(config)
        model.load_state_dict(read_state(path))
        model.set_train(False)
        return model


def read_config(path: PathLike) -> dict:
    """The ``config.json`` dict of a model directory, with a clear error if it is missing."""
    cfg_file = Path(path) / CONFIG_NAME
    if not cfg_file.is_file():
        raise CheckpointError(f"{cfg_file} not found: a model directory holds config.json and "
                              "model.safetensors (or pytorch_model.bin), as written by "
                              "save_pretrained or a training run.")
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except ValueError as exc:  # UnicodeDecodeError included
        raise CheckpointError(f"{cfg_file} is not valid JSON ({exc}): use the config.json "
                              "written with these weights.") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_file} holds a JSON {type(config).__name__}, not the mapping "
                              "of a model config: use the config.json written with these "
                              "weights.")
    return config


def as_token_ids(ids: Any, what: str = "token ids") -> np.ndarray:
    """``ids`` (a Tensor, numpy array or nested list of integers) as a numpy int32 array, or an
    :class:`~mindtf.errors.InputError` saying what is wrong (ragged rows, non-integers, ids
    too large for int32). Shapes are the caller's to check."""
    if isinstance(ids, Tensor):
        ids = ids.asnumpy()
    try:
        arr = np.asarray(ids)
    except ValueError:  # ragged nested lists
        raise InputError(f"{what} must be a rectangular (B, T) array of integers; rows of "
                         "different lengths need padding to one length.") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise InputError(f"{what} must be integers, got {arr.dtype} (encode text with the "
                         "tokenizer; ids are whole numbers).")
    info = np.iinfo(np.int32)
    if arr.size and (arr.max() > info.max or arr.min() < info.min):
        bad = arr.max() if arr.max() > info.max else arr.min()
        raise InputError(f"{what}: id {bad} is not a token id (it does not even fit int32).")
    return arr.astype(np.int32)


def check_token_ids(ids: Any, vocab_size: int, what: str, *, max_len: Optional[int] = None,
                    past: int = 0, size_field: str = "vocab_size",
                    len_field: str = "max_len") -> np.ndarray:
    """The one host-side check of token ids given to a model, before MindSpore sees them.

    ``ids`` must be a ``(B, T)`` array of integers in ``[0, vocab_size)``; with ``max_len``,
    ``past + T`` (positions already cached plus new ones) must fit the position table. Returns
    the ids as numpy int32; raises :class:`~mindtf.errors.InputError` naming the problem and the
    fix (``size_field`` / ``len_field`` name the config fields in the message)."""
    arr = as_token_ids(ids, what)
    if arr.ndim != 2:
        raise InputError(f"{what} must have shape (B, T), got shape {arr.shape}. Add a batch "
                         "dimension: ids[None, :].")
    if arr.size and (arr.max() >= vocab_size or arr.min() < 0):
        bad = int(arr.max()) if arr.max() >= vocab_size else int(arr.min())
        raise InputError(f"{what} contains token id {bad}, outside the vocabulary "
                         f"[0, {vocab_size}) of this model (config.{size_field}={vocab_size}). "
                         "Was the text encoded with another tokenizer?")
    if max_len is not None and past + arr.shape[1] > max_len:
        raise InputError(f"{what} has {past + arr.shape[1]} positions, longer than the model's "
                         f"{len_field}={max_len} (its position table). Crop the input to the last "
                         f"{max_len} tokens (ids[:, -{max_len}:]) or build the model with a "
                         f"larger {len_field}.")
    return arr
