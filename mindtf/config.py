"""Dataclass configs from files and command-line flags.

A run is described by dataclasses (``GPTConfig``, ``TransformerConfig``, ``TrainConfig``, ...).
``python -m mindtf train`` builds one ``--section.field`` flag per field and coerces file and flag
values with :func:`coerce_value`.
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

__all__ = ["load_config_file", "build_dataclass", "dataclass_from_dict", "field_type", "coerce_value"]

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


def field_type(tp: Any) -> tuple:
    """``(type, optional)`` of a field annotation such as ``Optional[int]``."""
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if args else str), True
    return tp, False


def coerce_value(tp: Any, value: Any, where: Optional[str]) -> Any:
    """``value`` (from YAML, JSON or a flag) as type ``tp``; a clear ConfigError if it is not."""
    def bad() -> Exception:
        msg = f"expected {getattr(tp, '__name__', tp)}, got {value!r}"
        if where is None:
            return argparse.ArgumentTypeError(msg)
        return ConfigError(f"{where}: {msg}.")

    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false",
                                                         "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise bad()
    if tp is int:
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value)  # accepts "1e3"
            except ValueError:
                raise bad() from None
            if number.is_integer():
                return int(number)
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads "6e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise bad() from None
        raise bad()
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad()
    return value


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
