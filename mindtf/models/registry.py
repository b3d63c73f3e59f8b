"""One table from a saved ``model_type`` to the class that reads it, and the two functions that
use it.

::

    load_model(dir) ── config.json: model_type ──> MODEL_TYPES[model_type].from_pretrained(dir)
    save_model(model, dir) ──────────────────────> model.save_pretrained(dir)

A new model class lists the ``model_type`` values it reads in ``model_types`` and is added to
``_CLASSES``; nothing else in mindtf changes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Type

from mindtf.errors import CheckpointError
from mindtf.models.base import Pretrained, read_config
from mindtf.models.gpt import GPT
from mindtf.models.nnlm import NNLM
from mindtf.models.transformer import Transformer

__all__ = ["MODEL_TYPES", "model_class", "load_model", "save_model"]

_CLASSES = (GPT, Transformer, NNLM)
#: saved ``model_type`` -> model class
MODEL_TYPES: Dict[str, Type[Pretrained]] = {t: cls for cls in _CLASSES for t in cls.model_types}


def model_class(model_type: str) -> Type[Pretrained]:
    """The class that reads ``model_type``, with a clear error for unknown ones."""
    if model_type not in MODEL_TYPES:
        raise CheckpointError(f"model_type={model_type!r} is not a mindtf model "
                              f"(known: {', '.join(sorted(MODEL_TYPES))}).")
    return MODEL_TYPES[model_type]


def load_model(path, **overrides) -> Pretrained:
    """Build the model saved in directory ``path`` (any model in :data:`MODEL_TYPES`), in eval
    mode. ``overrides`` replace config fields, e.g. ``dropout=0.0``."""
    model_type = read_config(path).get("model_type", "gpt2")  # Hugging Face GPT-2 may omit it
    return model_class(model_type).from_pretrained(Path(path), **overrides)


def save_model(model, path) -> Path:
    """Write ``model`` to the directory ``path`` (``config.json`` + ``model.safetensors``)."""
    if not isinstance(model, Pretrained):
        raise CheckpointError(f"save_model needs a mindtf model (one of "
                              f"{', '.join(c.__name__ for c in _CLASSES)}), not "
                              f"{type(model).__name__}; for any Cell write its parameters with "
                              "mindtf.weights.write_safetensors("
                              "mindtf.weights.state.state_of(cell), file).")
    return model.save_pretrained(path)
