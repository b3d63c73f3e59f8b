"""Dataclass configs from files and command-line flags.

A run is described by dataclasses (``GPTConfig``, ``TransformerConfig``, ``TrainConfig``, ...).
They can be written in a YAML or JSON file, one section per dataclass::

    # my_run.yaml
    model: {n_layer: 6, n_embd: 256}
    train: {max_steps: 5000, lr: 6.0e-4}

and any field can be overridden on the command line as ``--section.field value``
(``--train.max_steps 100``). Precedence: defaults < file < flags. No ``exec``, no globals.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Dict, Optional, Type, TypeVar

from .errors import ConfigError

__all__ = ["load_config_file", "add_dataclass_arguments", "build_dataclass", "dataclass_from_dict"]

T = TypeVar("T")


def dataclass_from_dict(cls: Type[T], d: Dict[str, Any]) -> T:
    """``cls(**d)``, with a clear :class:`ConfigError` naming unknown fields."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(known)}.")
    return cls(**d)


def load_config_file(path: Optional[str]) -> Dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file into a dict of sections."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found.")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of sections (model:, train:, ...).")
    return data


def _base_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0]) if args else str
    return tp


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _parser_for(tp: Any):
    tp = _base_type(tp)
    if tp is bool:
        return _parse_bool
    if tp in (int, float, str):
        return tp
    return str


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: Type, section: str,
                            title: Optional[str] = None) -> None:
    """Add one ``--section.field`` option per field of dataclass ``cls`` (default: unset)."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(title or f"{section} options ({cls.__name__})")
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        group.add_argument(f"--{section}.{f.name}", dest=f"{section}__{f.name}",
                           type=_parser_for(hints[f.name]), default=None, metavar="V",
                           help=f"(default: {default})")


def build_dataclass(cls: Type[T], section: str, file_cfg: Dict[str, Any],
                    args: Optional[argparse.Namespace] = None, base: Optional[Dict] = None) -> T:
    """Defaults (or ``base``) < ``file_cfg[section]`` < ``--section.field`` flags -> ``cls``."""
    values: Dict[str, Any] = dict(base or {})
    from_file = file_cfg.get(section) or {}
    if not isinstance(from_file, dict):
        raise ConfigError(f"config section {section!r} must be a mapping.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(from_file) - known)
    if unknown:
        raise ConfigError(f"unknown {section} fields in the config file: {unknown}; "
                          f"known: {sorted(known)}.")
    values.update(from_file)
    if args is not None:
        for name in known:
            v = getattr(args, f"{section}__{name}", None)
            if v is not None:
                values[name] = v
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"bad {section} config: {exc}") from exc
