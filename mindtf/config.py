"""Dataclass configs from files and command-line flags, and the run config a run leaves behind.

A run is described by dataclasses (``GPTConfig``, ``TransformerConfig``, ``TrainConfig``, ...).
They can be written in a YAML or JSON file, one section per dataclass::

    # my_run.yaml
    model: {n_layer: 6, n_embd: 256}
    train: {max_steps: 5000, lr: 6.0e-4}

and any field can be overridden on the command line as ``--section.field value``
(``--train.max_steps 100``). Precedence: defaults < file < flags. No ``exec``, no globals::

    file (YAML/JSON) --load_config_file--> {section: {field: value}}
                         --coerce_section--> values of the fields' types
    defaults < file < flags --build_dataclass--> GPTConfig(...), TrainConfig(...), ...
    {section: dataclass} --write_run_config--> OUT_DIR/config.yaml --read_run_config--> dict

A field's documentation is the ``# comment`` on its line in the dataclass (read by
:func:`field_comments`); ``python -m mindtf train --help`` shows it, so there is one place to
write it.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
import typing
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Type, TypeVar, Union

from mindtf.errors import ConfigError
from mindtf.fileio import write_text_atomically

__all__ = ["RUN_CONFIG", "load_config_file", "build_dataclass", "dataclass_from_dict",
           "field_type", "coerce_value", "coerce_section", "field_comments", "write_run_config",
           "read_run_config"]

T = TypeVar("T")

#: the file name of the resolved configuration a run writes into its output folder
RUN_CONFIG = "config.yaml"


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
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p} is not UTF-8 text (byte {exc.start}): save it as UTF-8.") from None
    if p.suffix.lower() not in (".yaml", ".yml"):
        try:
            data = json.loads(text)
        except ValueError as exc:  # json.JSONDecodeError
            raise ConfigError(f"{p}, line {exc.lineno}, column {exc.colno}: not valid JSON "
                              f"({exc.msg}); fix the file, or write YAML in a .yaml file."
                              ) from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
            raise ConfigError(f"{p}{where}: not valid YAML ({problem}); fix the file there "
                              "(each line 'field: value', indented with spaces).") from None
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
    """``value`` (from YAML, JSON or a flag) as type ``tp``; a clear error if it is not.

    ``where`` names the value in a :class:`ConfigError` (``"run.yaml: train.lr"``); with
    ``where=None`` the error is an ``argparse.ArgumentTypeError`` (argparse names the flag)."""
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


def coerce_section(cls: type, section: str, values: Any, where: str) -> Dict[str, Any]:
    """The ``section`` mapping of a config file with each known field's value converted to the
    field's type (``null`` only for ``Optional`` fields). Unknown names pass through unchanged:
    :func:`build_dataclass` reports them with the list of known fields."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: section {section!r} must be a mapping of field: value.")
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in values.items():
        if name not in hints:
            out[name] = value
            continue
        tp, optional = field_type(hints[name])
        if value is None:
            if not optional:
                raise ConfigError(f"{where}: {section}.{name} cannot be empty (null).")
            out[name] = None
        else:
            out[name] = coerce_value(tp, value, f"{where}: {section}.{name}")
    return out


def build_dataclass(cls: Type[T], section: str, file_cfg: Dict[str, Any],
                    args: Optional[argparse.Namespace] = None, base: Optional[Dict] = None) -> T:
    """Defaults (or ``base``) < ``file_cfg[section]`` < ``--section.field`` flags -> ``cls``.

    Flags are read from ``args`` as attributes ``section__field`` (None: not given)."""
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


# --------------------------------------------------------------------------- field comments
def field_comments(cls: type) -> Dict[str, str]:
    """``{field: comment}`` from the ``# comment`` written after each field of a dataclass.

    A comment may go on over the next lines as comment-only lines indented past the field::

        lr: float = 1e-3  # peak learning rate
                          # (cosine schedule)    -> "peak learning rate (cosine schedule)"

    Fields of base classes are included (a subclass's comment wins). A field without a comment
    is missing from the result; so is everything when the source cannot be read (e.g. a class
    made in an interactive session)."""
    names = {f.name for f in dataclasses.fields(cls)}
    found: Dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        for name, text in _class_comments(klass).items():
            if name in names:
                found[name] = text
    return found


def _class_comments(klass: type) -> Dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return {}
    comments = {t.start[0]: t for t in tokens if t.type == tokenize.COMMENT}  # line -> token
    body = next((len(t.string) for t in tokens if t.type == tokenize.INDENT), None)
    found: Dict[str, str] = {}
    for tok in tokens:
        row, col = tok.start
        if tok.type != tokenize.NAME or col != body or row not in comments:
            continue
        line = lines[row - 1]
        if line[:col].strip() or not line[col + len(tok.string):].lstrip().startswith(":"):
            continue  # not "name: annotation" at the start of a line of the class body
        parts = [comments[row].string.lstrip("#").strip()]
        row += 1
        while (row in comments and comments[row].start[1] > col
               and not lines[row - 1][:comments[row].start[1]].strip()):
            parts.append(comments[row].string.lstrip("#").strip())  # a continued comment
            row += 1
        found[tok.string] = " ".join(p for p in parts if p)
    return found


# --------------------------------------------------------------------------- the run config
def _plain(value: Any) -> Any:
    """``value`` as YAML's safe types: dataclasses become dicts, tuples lists, paths strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_run_config(out_dir: Union[str, Path], sections: Mapping[str, Any]) -> Path:
    """Write the resolved configuration of a run to ``OUT_DIR/config.yaml``; returns its path.

    ``sections`` maps a section name to a dataclass instance or a dict, in the order they are
    written (``{"task": "char-lm", "model": GPTConfig(...), "train": TrainConfig(...),
    "data": CharLMData(...)}``); plain values such as the task name are written as they are.
    The file is replaced atomically (a crash never leaves half a file), so it can be passed
    back as ``python -m mindtf train --config OUT_DIR/config.yaml`` and is what
    ``train --resume`` starts from (:func:`read_run_config`)."""
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUN_CONFIG
    text = ("# the resolved configuration of this run; train again with it:\n"
            f"#   python -m mindtf train --config {path}\n"
            + yaml.safe_dump(_plain(dict(sections)), sort_keys=False, allow_unicode=True))
    write_text_atomically(path, text)
    return path


def read_run_config(out_dir: Union[str, Path]) -> Dict[str, Any]:
    """The sections :func:`write_run_config` wrote to ``OUT_DIR/config.yaml``, as a dict
    (``{"task": ..., "model": {...}, "train": {...}, "data": {...}}``)."""
    path = Path(out_dir) / RUN_CONFIG
    if not path.is_file():
        raise ConfigError(f"{path} not found: {out_dir} is not a run folder written by a mindtf "
                          "training run (pass the run's output folder, train.out_dir).")
    return load_config_file(str(path))
