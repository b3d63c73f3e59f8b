"""``python -m mindtf train``: train a model described by a config file and/or flags.

Two tasks share one command:

* ``char-lm``: a character-level GPT (:class:`~mindtf.models.gpt_config.GPTConfig`,
  :class:`~mindtf.recipes.char_lm.CharLMData`; defaults: the quickstart's nanoGPT Shakespeare
  settings);
* ``translation``: a Transformer on Multi30k de->en
  (:class:`~mindtf.models.transformer_config.TransformerConfig`,
  :class:`~mindtf.recipes.translation.TranslationData`; defaults:
  :func:`~mindtf.recipes.translation.translation_configs`).

A run is three dataclasses, ``model``, ``train`` (:class:`~mindtf.training.config.TrainConfig`)
and ``data``; one ``--section.field`` flag per field, its help the field's comment::

    task defaults  <  --config FILE.yaml  <  --section.field flags   (later sources win)
         |                  |                        |
         +------------------+----- resolve() --------+--> {model, train, data} dataclasses
                                                               |
                                        recipe (train_char_lm / train_translation)
                                                               |
                                  OUT_DIR/config.yaml (written by the recipe), checkpoints/ ...

``--resume`` starts from the run's ``OUT_DIR/config.yaml``
(:func:`mindtf.config.read_run_config`) instead of the task's defaults, so
``train --resume --train.out_dir DIR --train.max_steps N`` continues a run to step ``N``; a resume
that does not fit the run (another model, other data, a damaged checkpoint) stops with the reason
before any file is written (:meth:`mindtf.training.trainer.Trainer.resume`).
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import textwrap
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional

from mindtf.config import RUN_CONFIG, coerce_value, field_comments, field_type

__all__ = ["add_arguments", "run", "resolve", "config_dict", "explain_unknown"]

TASKS = ("char-lm", "translation")
SECTIONS = ("model", "train", "data")
SECTION_TITLES = {"model": "model", "train": "training", "data": "data"}

DESCRIPTION = """\
Train a model from a config file and/or flags.

Tasks:
  char-lm      a character-level GPT on Tiny Shakespeare or your own text file
  translation  a Transformer on Multi30k German -> English, with BLEU on test2016

Every setting is a field of one of three sections -- model, train, data -- listed below
per task. Set it in a YAML file (one mapping per section) and/or on the command line as
--section.field VALUE. Precedence: the task's defaults < the --config file < flags.
For an Optional field, the value 'none' unsets it.
"""

EPILOG = """\
examples:
  # the quickstart model, 500 steps, on your own text
  python -m mindtf train --task char-lm --data.dataset file --data.text_file my.txt \\
      --train.max_steps 500 --train.out_dir runs/mytext
  # a bigger GPT from a config file, one value changed on the command line
  python -m mindtf train --config configs/char_gpt.yaml --train.lr 3e-4
  # Multi30k de->en translation, then translate with the best checkpoint
  python -m mindtf train --config configs/multi30k_transformer.yaml
  python -m mindtf translate --checkpoint runs/multi30k/checkpoints/best "Ein Hund rennt."
  # show the resolved configuration without training (save it to start a config file)
  python -m mindtf train --task translation --model.d_model 128 --print-config
  # continue an interrupted or finished run up to step 6000
  python -m mindtf train --resume --train.out_dir runs/multi30k --train.max_steps 6000
  # data parallel on 2 worker processes started by MindSpore's msrun (README: "Several devices")
  python -m mindtf train --distributed 2 --config configs/char_gpt.yaml

A run folder (train.out_dir) holds config.yaml (the resolved configuration), checkpoints/
(best, latest and the last step_*), metrics.jsonl, loss.png and summary.json; translation
runs also write bleu.json and test_hypotheses.txt.
"""

_NONE = object()  # "--section.field none": unset an Optional field


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the description's line breaks; no "(default: None)" noise; no line broken at a
    hyphen ('de-en' stays whole)."""

    def _split_lines(self, text: str, width: int) -> list:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" not in text and action.default not in (None, False, argparse.SUPPRESS)
                and action.option_strings and "(default" not in text):
            text += " (default: %(default)s)"
        return text


# --------------------------------------------------------------------------- task tables
def _classes() -> Dict[str, Dict[str, type]]:
    from mindtf.models.gpt_config import GPTConfig
    from mindtf.models.transformer_config import TransformerConfig
    from mindtf.recipes.char_lm import CharLMData
    from mindtf.recipes.translation import TranslationData
    from mindtf.training.config import TrainConfig

    return {"char-lm": {"model": GPTConfig, "train": TrainConfig, "data": CharLMData},
            "translation": {"model": TransformerConfig, "train": TrainConfig,
                            "data": TranslationData}}


def _defaults() -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Each task's default values, section by section (as dicts)."""
    from mindtf.recipes.char_lm import quickstart_configs
    from mindtf.recipes.translation import translation_configs

    out = {}
    for task, cfgs in (("char-lm", quickstart_configs()), ("translation", translation_configs())):
        out[task] = {s: dataclasses.asdict(c) for s, c in zip(SECTIONS, cfgs)}
    out["char-lm"]["train"]["out_dir"] = "runs/char_lm"  # the quickstart keeps runs/quickstart
    return out


def _flag_type(tp: Any, optional: bool):
    def parse(text: str):
        if optional and text.lower() in ("none", "null"):
            return _NONE
        return coerce_value(tp, text, None)

    parse.__name__ = getattr(tp, "__name__", "value")  # argparse names it in errors
    return parse


def _fmt(value: Any) -> str:
    return "none" if value is None else repr(value) if isinstance(value, str) else str(value)


def _default_text(defaults: Dict, task: str, section: str, name: str) -> str:
    """``"2000"``, or ``"2000 / 6000"`` (char-lm / translation) for the shared train section, or
    ``"64; translation: 256"`` for a field both tasks' dataclasses have."""
    if task == "both":
        a, b = (defaults[t][section][name] for t in TASKS)
        return _fmt(a) if a == b else f"{_fmt(a)} / {_fmt(b)}"
    text = _fmt(defaults[task][section][name])
    for other in TASKS:
        if other != task and name in defaults[other][section]:
            text += f"; {other}: {_fmt(defaults[other][section][name])}"
    return text


# --------------------------------------------------------------------------- arguments
def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindtf.cli.common import (add_data_arguments, add_distributed_arguments,
                                   add_runtime_arguments)

    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = _Formatter
    parser.usage = ("python -m mindtf train --task {char-lm,translation} [--config FILE.yaml]\n"
                    "       [--model.FIELD V ...] [--train.FIELD V ...] [--data.FIELD V ...]\n"
                    "       [--resume] [--print-config] [--device D] [--threads N]\n"
                    "       [--distributed N] [--master-port PORT]\n"
                    "       [--mirror DIR] [--data-dir DIR] [--offline]")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="what to train (may also be given as 'task:' in the config file)")
    parser.add_argument("--config", metavar="FILE.yaml", default=None,
                        help="YAML or JSON file with 'model:', 'train:', 'data:' sections "
                             "(and optionally 'task:'), e.g. configs/char_gpt.yaml")
    parser.add_argument("--resume", action="store_true",
                        help=f"continue from OUT_DIR/checkpoints/latest (weights, optimiser, "
                             f"step, data order) using OUT_DIR/{RUN_CONFIG} as the base config")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration as YAML and exit")

    classes, defaults = _classes(), _defaults()
    added: Dict[str, set] = {s: set() for s in SECTIONS}
    for section in SECTIONS:
        for task in (("both",) if section == "train" else TASKS):
            cls = classes["char-lm" if task == "both" else task][section]
            hints = typing.get_type_hints(cls)
            comments = field_comments(cls)
            names = [f.name for f in dataclasses.fields(cls)]
            shared = [n for n in names if n in added[section]]
            if task == "both":
                title = f"{SECTION_TITLES[section]} options, both tasks ({cls.__name__})"
                desc = "defaults: char-lm / translation where they differ"
            else:
                title = f"{SECTION_TITLES[section]} options for --task {task} ({cls.__name__})"
                desc = (f"also: {', '.join('--' + section + '.' + n for n in shared)} (above)"
                        if shared else None)
            group = parser.add_argument_group(title, desc)
            for name in names:
                if name in added[section]:
                    continue
                added[section].add(name)
                tp, optional = field_type(hints[name])
                default = _default_text(defaults, task, section, name)
                help_text = f"{comments.get(name, '')} (default: {default})".strip()
                help_text = help_text.replace("%", "%%")  # argparse %-formats help strings
                group.add_argument(f"--{section}.{name}", dest=f"{section}__{name}", default=None,
                                   type=_flag_type(tp, optional), metavar="V", help=help_text)
    add_runtime_arguments(parser)
    add_distributed_arguments(parser)
    # not "data": that would read like the --data.FIELD options
    add_data_arguments(parser, title="dataset files (download and cache)")


def _fields() -> Dict[str, List[str]]:
    """``{section: sorted field names}`` over both tasks."""
    out: Dict[str, set] = {s: set() for s in SECTIONS}
    for sections in _classes().values():
        for section, cls in sections.items():
            out[section].update(f.name for f in dataclasses.fields(cls))
    return {s: sorted(names) for s, names in out.items()}


def explain_unknown(extras: List[str]) -> Optional[str]:
    """The error for an unrecognised ``--section.field`` option, naming the section's fields and
    the closest ones (argparse's "unrecognized arguments" names neither); None for others.
    :func:`mindtf.cli.main.main` calls it with what argparse did not recognise."""
    import difflib

    fields = None
    for extra in extras:
        m = re.match(r"--(\w+)\.([^=\s]+)", extra)
        if not m:
            continue
        fields = fields or _fields()
        section, name = m.groups()
        if section not in fields:
            return (f"unknown option {extra}: settings are --model.FIELD, --train.FIELD or "
                    "--data.FIELD.")
        close = difflib.get_close_matches(name, fields[section], n=3)
        hint = f" Did you mean {', '.join(f'--{section}.{c}' for c in close)}?" if close else ""
        return (f"unknown option --{section}.{name}: not a {section} field.{hint} "
                f"The {section} fields are: {', '.join(fields[section])}.")
    return None


# --------------------------------------------------------------------------- resolving
def _set_flags(args: argparse.Namespace) -> Dict[str, Dict[str, Any]]:
    """``{section: {field: value}}`` for the ``--section.field`` flags given on the command line."""
    out: Dict[str, Dict[str, Any]] = {s: {} for s in SECTIONS}
    for dest, value in vars(args).items():
        section, sep, name = dest.partition("__")
        if sep and section in out and value is not None:
            out[section][name] = value
    return out


def _check_sections(cfg: Dict[str, Any], where: str) -> None:
    from mindtf.errors import ConfigError

    unknown = sorted(set(cfg) - set(SECTIONS) - {"task"})
    if unknown:
        raise ConfigError(f"{where}: unknown sections {unknown}; a config has 'task:' and the "
                          f"sections {list(SECTIONS)}.")
    if "task" in cfg and cfg["task"] not in TASKS:
        raise ConfigError(f"{where}: task={cfg['task']!r}; choose one of {list(TASKS)}.")


def _task_of(saved: Dict[str, Any], classes: Dict[str, Dict[str, type]]) -> Optional[str]:
    """A run config's task: its ``task:`` entry, else the task whose model fields it has."""
    if saved.get("task"):
        return saved["task"]
    model = set(saved.get("model") or {})
    fits = [t for t in TASKS
            if model and model <= {f.name for f in dataclasses.fields(classes[t]["model"])}]
    return fits[0] if len(fits) == 1 else None


def _read_saved(args, flags, file_cfg, task, classes):
    """``(run config of the run to resume, task)``; ``({}, task)`` without ``--resume``."""
    from mindtf.config import read_run_config
    from mindtf.errors import ConfigError

    if not args.resume:
        return {}, task
    out_dir = (flags["train"].get("out_dir") or (file_cfg.get("train") or {}).get("out_dir")
               or (_defaults()[task]["train"]["out_dir"] if task else None))
    if out_dir is None:
        raise ConfigError("--resume needs the run folder: pass --train.out_dir DIR "
                          "(or --task to resume the task's default folder).")
    if not (Path(out_dir) / RUN_CONFIG).is_file():
        if task is None or not Path(out_dir).is_dir():  # else: resume a run without config.yaml
            raise ConfigError(f"nothing to resume in {out_dir}: "
                              + ("the folder does not exist" if not Path(out_dir).exists()
                                 else f"it has no {RUN_CONFIG}")
                              + ". Pass the --train.out_dir of an earlier run, or train without "
                              "--resume.")
        return {}, task
    where = str(Path(out_dir) / RUN_CONFIG)
    saved = read_run_config(out_dir)
    _check_sections(saved, where)
    saved_task = _task_of(saved, classes)
    if task and saved_task and saved_task != task:
        raise ConfigError(f"{where} is a {saved_task} run, not {task}.")
    return saved, task or saved_task


def resolve(args: argparse.Namespace):
    """``(task, {section: dataclass instance}, out_dir)`` from defaults, the saved run config
    (with ``--resume``), the ``--config`` file and the flags, in that order."""
    from mindtf.config import build_dataclass, coerce_section, load_config_file
    from mindtf.errors import ConfigError

    file_cfg = load_config_file(args.config)
    _check_sections(file_cfg, str(args.config))
    flags = _set_flags(args)
    classes = _classes()
    saved, task = _read_saved(args, flags, file_cfg, args.task or file_cfg.get("task"), classes)
    if task is None:
        raise ConfigError("choose what to train: --task char-lm or --task translation "
                          "(or 'task:' in the --config file).")

    # flags that belong to the other task's dataclasses
    for section in ("model", "data"):
        cls = classes[task][section]
        known = {f.name for f in dataclasses.fields(cls)}
        wrong = sorted(set(flags[section]) - known)
        if wrong:
            other = [t for t in TASKS if t != task][0]
            raise ConfigError(
                f"{', '.join(f'--{section}.{n}' for n in wrong)}: not a field of --task {task}'s "
                f"{section} config ({cls.__name__}) but of --task {other}'s "
                f"({classes[other][section].__name__}). {cls.__name__} fields: {sorted(known)}.")

    defaults = _defaults()
    configs = {}
    for section in SECTIONS:
        cls = classes[task][section]
        base = dict(defaults[task][section])
        base.update(coerce_section(cls, section, saved.get(section), RUN_CONFIG))
        from_file = {section: coerce_section(cls, section, file_cfg.get(section),
                                             str(args.config))}
        if section == "train":  # a short run keeps the default warmup within max_steps
            explicit = {**(saved.get("train") or {}), **from_file["train"], **flags["train"]}
            if "warmup_steps" not in explicit and isinstance(explicit.get("max_steps"), int):
                base["warmup_steps"] = min(base["warmup_steps"], explicit["max_steps"])
        unset = [n for n, v in flags[section].items() if v is _NONE]
        ns = argparse.Namespace(**{f"{section}__{n}": v for n, v in flags[section].items()
                                   if v is not _NONE})
        obj = build_dataclass(cls, section, from_file, ns, base=base)
        if unset:
            obj = dataclasses.replace(obj, **{n: None for n in unset})
        configs[section] = obj
    return task, configs, Path(configs["train"].out_dir)


def config_dict(task: str, configs: Dict[str, Any]) -> Dict[str, Any]:
    """``{"task": ..., "model": {...}, "train": {...}, "data": {...}}``, as ``--print-config``
    prints it and a run's ``config.yaml`` holds it."""
    return {"task": task, **{s: dataclasses.asdict(configs[s]) for s in SECTIONS}}


# --------------------------------------------------------------------------- running
def run(args: argparse.Namespace) -> int:
    from mindtf.cli.common import (fetch_kwargs, launch_data_parallel, print_char_lm_summary,
                                   print_translation_summary, setup_runtime)
    from mindtf.distributed import msrun_role, world
    from mindtf.training.checkpoints import (check_run_folder, read_trainer_state,
                                             resume_checkpoint)

    task, configs, out_dir = resolve(args)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config_dict(task, configs), sort_keys=False, allow_unicode=True),
              end="")
        return 0
    train_cfg = configs["train"]
    check_run_folder(out_dir)  # before any work: a file, under a file, read-only
    if args.resume:
        read_trainer_state(resume_checkpoint(out_dir))  # a damaged run: say so now
    if args.distributed is not None and not msrun_role():  # checked: same command, N workers
        return launch_data_parallel(args, out_dir)
    print(setup_runtime(args, train_cfg.mode, train_cfg.seed))  # joins msrun's cluster if in it
    if not args.resume and (out_dir / "checkpoints" / "latest").is_file():
        print(f"note: {out_dir} already holds a run; training starts again from step 0 and "
              "overwrites its checkpoints (add --resume to continue it instead).")
    print(f"task {task}; run folder {out_dir} (its configuration: {out_dir / RUN_CONFIG})")
    if task == "char-lm":
        from mindtf.recipes.char_lm import train_char_lm

        summary = train_char_lm(configs["model"], train_cfg, configs["data"], fetch_kwargs(args),
                                resume=args.resume)
        if world().is_main:
            print_char_lm_summary(summary)
    else:
        from mindtf.recipes.translation import train_translation

        summary = train_translation(configs["model"], train_cfg, configs["data"],
                                    fetch_kwargs(args), resume=args.resume)
        if world().is_main:
            print_translation_summary(summary, configs["data"])
    return 0
