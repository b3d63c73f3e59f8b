"""``python -m mindtf train``: train a model described by a config file and/or flags.

Two tasks share one command:

* ``char-lm``: a character-level GPT (:class:`~mindtf.gpt.GPTConfig`,
  :class:`~mindtf.recipes.CharLMData`; defaults: the quickstart's nanoGPT Shakespeare settings);
* ``translation``: a Transformer on Multi30k de->en (:class:`~mindtf.transformer.TransformerConfig`,
  :class:`~mindtf.translation.TranslationData`; defaults:
  :func:`~mindtf.translation.translation_configs`).

A run is three dataclasses, ``model``, ``train`` (:class:`~mindtf.train.TrainConfig`) and ``data``.
Each field can come from the task's defaults, from a YAML/JSON file (``--config``, one section per
dataclass) or from a ``--section.field value`` flag; later sources win: defaults < file < flags.
The resolved configuration is saved as ``OUT_DIR/config.yaml``, and ``--resume`` starts from it,
so ``train --resume --train.out_dir DIR --train.max_steps N`` continues a run to step ``N``.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import typing
from pathlib import Path
from typing import Any, Dict

from ..config import coerce_value, field_type

TASKS = ("char-lm", "translation")
SECTIONS = ("model", "train", "data")
SECTION_TITLES = {"model": "model", "train": "training", "data": "data"}
#: the name of the resolved configuration written into the output folder
SAVED_CONFIG = "config.yaml"

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

A run folder (train.out_dir) holds config.yaml (the resolved configuration), checkpoints/
(best, latest and the last step_*), metrics.jsonl, loss.png and summary.json; translation
runs also write bleu.json and test_hypotheses.txt.
"""

#: help for fields whose dataclass line carries no comment
FIELD_HELP = {
    ("model", "vocab_size"): "set from the text's characters",
    ("model", "block_size"): "context length in characters (size of the position table)",
    ("model", "n_layer"): "transformer blocks",
    ("model", "n_head"): "attention heads (must divide n_embd)",
    ("model", "n_embd"): "model width",
    ("model", "layer_norm_epsilon"): "LayerNorm epsilon",
    ("model", "rope_base"): "RoPE frequency base",
    ("model", "src_vocab_size"): "set from the source vocabulary",
    ("model", "tgt_vocab_size"): "set from the target vocabulary",
    ("model", "d_model"): "model width",
    ("model", "n_heads"): "attention heads (must divide d_model)",
    ("model", "n_encoder_layers"): "encoder layers",
    ("model", "n_decoder_layers"): "decoder layers",
    ("model", "d_ff"): "feed-forward width",
    ("model", "layer_norm_eps"): "LayerNorm epsilon",
    ("model", "max_len"): "longest sequence (size of the position table)",
    ("model", "pad_id"): "set from the vocabulary's <pad>",
    ("train", "max_steps"): "optimiser steps in total (with --resume: the step to stop at)",
    ("train", "batch_size"): "sequences (char-lm) or sentence pairs (translation) per micro-batch",
    ("train", "min_lr"): "learning rate at the end of the cosine decay",
    ("train", "warmup_steps"): "linear warmup steps",
    ("train", "noam_factor"): "scale of the noam schedule",
    ("train", "weight_decay"): "AdamW decoupled weight decay (not on biases and norms)",
    ("train", "beta1"): "AdamW beta1",
    ("train", "beta2"): "AdamW beta2",
    ("train", "eps"): "AdamW epsilon",
    ("train", "label_smoothing"): "label smoothing of the cross-entropy",
    ("train", "eval_interval"): "evaluate on the whole validation set and checkpoint every N steps",
    ("train", "log_interval"): "log the training loss every N steps",
    ("train", "keep_best"): "keep checkpoints/best (lowest validation loss)",
    ("train", "seed"): "seed of the weights, data order and dropout",
    ("train", "out_dir"): "run folder: checkpoints, metrics, plot, config.yaml",
    ("train", "progress"): "show a progress bar",
    ("data", "val_fraction"): "the last fraction of the text used for validation",
    ("data", "sample_prompt"): "prompt of the sample printed at the end",
    ("data", "sample_tokens"): "characters in that sample",
    ("data", "sample_temperature"): "sampling temperature of that sample",
}

_NONE = object()  # "--section.field none": unset an Optional field


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the description's line breaks; no "(default: None)" noise."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" not in text and action.default not in (None, False, argparse.SUPPRESS)
                and action.option_strings and "(default" not in text):
            text += " (default: %(default)s)"
        return text


# --------------------------------------------------------------------------- task tables
def _classes() -> Dict[str, Dict[str, type]]:
    from ..gpt import GPTConfig
    from ..recipes import CharLMData
    from ..train import TrainConfig
    from ..transformer import TransformerConfig
    from ..translation import TranslationData

    return {"char-lm": {"model": GPTConfig, "train": TrainConfig, "data": CharLMData},
            "translation": {"model": TransformerConfig, "train": TrainConfig,
                            "data": TranslationData}}


def _defaults() -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Each task's default values, section by section (as dicts)."""
    from ..recipes import quickstart_configs
    from ..translation import translation_configs

    out = {}
    for task, cfgs in (("char-lm", quickstart_configs()), ("translation", translation_configs())):
        out[task] = {s: dataclasses.asdict(c) for s, c in zip(SECTIONS, cfgs)}
    out["char-lm"]["train"]["out_dir"] = "runs/char_lm"  # the quickstart keeps runs/quickstart
    return out


def _field_comments(cls: type) -> Dict[str, str]:
    """The ``# comment`` after each field in the dataclass source, used as the flag's help."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    found = {}
    for m in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.+)$", source, re.M):
        found[m.group(1)] = m.group(2).strip()
    return found


def _flag_type(tp: Any, optional: bool):
    def parse(text: str):
        if optional and text.lower() in ("none", "null"):
            return _NONE
        return coerce_value(tp, text, None)

    parse.__name__ = getattr(tp, "__name__", "value")  # argparse names it in errors
    return parse


def _fmt(value: Any) -> str:
    return "none" if value is None else repr(value) if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------- arguments
def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._common import add_data_arguments, add_runtime_arguments

    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = _Formatter
    parser.usage = ("python -m mindtf train --task {char-lm,translation} [--config FILE.yaml]\n"
                    "       [--model.FIELD V ...] [--train.FIELD V ...] [--data.FIELD V ...]\n"
                    "       [--resume] [--print-config] [--device D] [--threads N]\n"
                    "       [--mirror DIR] [--data-dir DIR] [--offline]")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="what to train (may also be given as 'task:' in the config file)")
    parser.add_argument("--config", metavar="FILE.yaml", default=None,
                        help="YAML or JSON file with 'model:', 'train:', 'data:' sections "
                             "(and optionally 'task:'), e.g. configs/char_gpt.yaml")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT_DIR/checkpoints/latest (weights, optimiser, "
                             "step, data order) using OUT_DIR/config.yaml as the base config")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration as YAML and exit")

    classes, defaults = _classes(), _defaults()
    added: Dict[str, set] = {s: set() for s in SECTIONS}
    for section in SECTIONS:
        tasks = ("both",) if section == "train" else TASKS
        for task in tasks:
            cls = classes["char-lm" if task == "both" else task][section]
            hints = typing.get_type_hints(cls)
            comments = _field_comments(cls)
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
                if task == "both":
                    a, b = (defaults[t][section][name] for t in TASKS)
                    default = _fmt(a) if a == b else f"{_fmt(a)} / {_fmt(b)}"
                else:
                    others = [t for t in TASKS if t != task and name in defaults[t][section]]
                    default = _fmt(defaults[task][section][name])
                    if others:
                        default += "".join(f"; {t}: {_fmt(defaults[t][section][name])}"
                                           for t in others)
                help_text = comments.get(name) or FIELD_HELP.get((section, name), "")
                help_text = f"{help_text} (default: {default})".strip()
                group.add_argument(f"--{section}.{name}", dest=f"{section}__{name}", default=None,
                                   type=_flag_type(tp, optional), metavar="V", help=help_text)
    add_runtime_arguments(parser)
    add_data_arguments(parser)
    for group in parser._action_groups:  # "data" would read like the --data.FIELD options
        if group.title == "data":
            group.title = "dataset files (download and cache)"
    _explain_unknown_fields(parser, {s: sorted(names) for s, names in added.items()})


def _explain_unknown_fields(parser: argparse.ArgumentParser, fields: Dict[str, list]) -> None:
    """Turn "unrecognized arguments: --train.nonsense 1" into a message naming the section's
    fields (argparse would report it from the top-level parser without them)."""
    import difflib

    original = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        ns, extras = original(args, namespace)
        for extra in extras:
            m = re.match(r"--(\w+)\.([^=\s]+)", extra)
            if not m:
                continue
            section, name = m.groups()
            if section not in fields:
                parser.error(f"unknown option {extra}: settings are --model.FIELD, "
                             "--train.FIELD or --data.FIELD.")
            close = difflib.get_close_matches(name, fields[section], n=3)
            hint = (f" Did you mean {', '.join(f'--{section}.{c}' for c in close)}?"
                    if close else "")
            parser.error(f"unknown option --{section}.{name}: not a {section} field.{hint} "
                         f"The {section} fields are: {', '.join(fields[section])}.")
        return ns, extras

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


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
    from ..errors import ConfigError

    unknown = sorted(set(cfg) - set(SECTIONS) - {"task"})
    if unknown:
        raise ConfigError(f"{where}: unknown sections {unknown}; a config has 'task:' and the "
                          f"sections {list(SECTIONS)}.")
    if "task" in cfg and cfg["task"] not in TASKS:
        raise ConfigError(f"{where}: task={cfg['task']!r}; choose one of {list(TASKS)}.")


def _coerce_section(cls: type, section: str, values: Any, where: str) -> Dict[str, Any]:
    from ..errors import ConfigError

    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: section {section!r} must be a mapping of field: value.")
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in values.items():
        if name not in hints:  # reported by build_dataclass with the list of known fields
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


def resolve(args: argparse.Namespace):
    """``(task, {section: dataclass instance}, out_dir)`` from defaults, the saved run config
    (with ``--resume``), the ``--config`` file and the flags, in that order."""
    import yaml

    from ..config import build_dataclass, load_config_file
    from ..errors import ConfigError

    file_cfg = load_config_file(args.config)
    _check_sections(file_cfg, str(args.config))
    flags = _set_flags(args)
    task = args.task or file_cfg.get("task")
    classes, defaults = _classes(), _defaults()

    saved: Dict[str, Any] = {}
    if args.resume:
        out_dir = flags["train"].get("out_dir") or (file_cfg.get("train") or {}).get("out_dir") \
            or (defaults[task]["train"]["out_dir"] if task else None)
        if out_dir is None:
            raise ConfigError("--resume needs the run folder: pass --train.out_dir DIR "
                              "(or --task to resume the task's default folder).")
        saved_file = Path(out_dir) / SAVED_CONFIG
        if saved_file.is_file():
            saved = yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}
            _check_sections(saved, str(saved_file))
            if task and saved.get("task") and saved["task"] != task:
                raise ConfigError(f"{saved_file} is a {saved['task']} run, not {task}.")
            task = task or saved.get("task")
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

    configs = {}
    for section in SECTIONS:
        cls = classes[task][section]
        base = dict(defaults[task][section])
        base.update(_coerce_section(cls, section, saved.get(section), SAVED_CONFIG))
        from_file = {section: _coerce_section(cls, section, file_cfg.get(section),
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
    return {"task": task, **{s: dataclasses.asdict(configs[s]) for s in SECTIONS}}


def _write_config(path: Path, task: str, configs: Dict[str, Any]) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# the resolved configuration of this run (python -m mindtf train); reuse it with\n"
            f"#   python -m mindtf train --config {path}\n"
            + yaml.safe_dump(config_dict(task, configs), sort_keys=False, allow_unicode=True))
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- running
def run(args: argparse.Namespace) -> int:
    import yaml

    from ..errors import ConfigError
    from ._common import fetch_kwargs, setup_runtime

    task, configs, out_dir = resolve(args)
    if args.print_config:
        print(yaml.safe_dump(config_dict(task, configs), sort_keys=False, allow_unicode=True),
              end="")
        return 0
    train_cfg = configs["train"]
    try:
        info = setup_runtime(args, train_cfg.mode, train_cfg.seed)
    except ValueError as exc:  # e.g. --device gpu on a CPU-only MindSpore
        raise ConfigError(str(exc)) from exc
    print(info)
    if args.resume and not (out_dir / "checkpoints" / "latest").is_file():
        raise ConfigError(f"nothing to resume in {out_dir}: {out_dir / 'checkpoints' / 'latest'} "
                          "does not exist (train without --resume first, or pass the run's "
                          "--train.out_dir).")
    if not args.resume and (out_dir / "checkpoints" / "latest").is_file():
        print(f"note: {out_dir} already holds a run; training starts again from step 0 and "
              "overwrites its checkpoints (add --resume to continue it instead).")
    _write_config(out_dir / SAVED_CONFIG, task, configs)
    print(f"task {task}; configuration saved to {out_dir / SAVED_CONFIG}")
    if task == "char-lm":
        from ..recipes import train_char_lm

        summary = train_char_lm(configs["model"], train_cfg, configs["data"], fetch_kwargs(args),
                                resume=args.resume)
        _print_char_lm(summary)
    else:
        from ..translation import train_translation

        summary = train_translation(configs["model"], train_cfg, configs["data"],
                                    fetch_kwargs(args), resume=args.resume)
        _print_translation(summary, configs["data"])
    return 0


def _print_char_lm(s: Dict[str, Any]) -> None:
    print()
    val = "n/a" if s.get("val_loss") is None else f"{s['val_loss']:.4f}"
    print(f"validation loss: {val} (whole validation set), {s['steps']} steps, "
          f"{s['seconds']:.0f} s of training, {s['tokens_per_s']:,.0f} tokens/s")
    print("sample:")
    print("-" * 60)
    print(s["sample"])
    print("-" * 60)
    print(f"checkpoint: {s['best_checkpoint']}   loss plot: {s['plot']}")
    print(f"continue a prompt: python -m mindtf generate --checkpoint {s['best_checkpoint']} "
          "--prompt 'ROMEO:'")


def _print_translation(s: Dict[str, Any], data) -> None:
    print()
    if s.get("val_loss") is not None:
        print(f"validation loss: {s['val_loss']:.4f} (perplexity {s['val_ppl']:.2f}, whole "
              f"validation split), {s['steps']} steps, {s['seconds']:.0f} s of training, "
              f"{s['tokens_per_s']:,.0f} target tokens/s")
    if "bleu" in s:
        print(f"BLEU on {data.test_split} ({s['test_sentences']} sentences, "
              f"{'greedy' if data.beam_size == 1 else f'beam {data.beam_size}'}): "
              f"{s['bleu']:.2f}")
        print(f"  {s['bleu_text']}")
        for ex in s.get("samples", []):
            print(f"  source:      {ex['source']}")
            print(f"  reference:   {ex['reference']}")
            print(f"  translation: {ex['translation']}")
        print(f"scores: {s['bleu_file']}")
    print(f"checkpoint: {s['best_checkpoint']}   loss plot: {s['plot']}")
    print(f"translate: python -m mindtf translate --checkpoint {s['best_checkpoint']} "
          "\"Ein Hund läuft über die Wiese.\"")


# --------------------------------------------------------------------------- char-LM with resume
