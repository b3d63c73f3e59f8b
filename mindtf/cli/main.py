"""The ``python -m mindtf`` command line: argument dispatch.

Each sub-command lives in its own module under :mod:`mindtf.cli` and provides
``add_arguments(parser)`` and ``run(args) -> int`` (and optionally
``explain_unknown(extras) -> message or None`` for a better error about unknown options)::

    argv --_parsers--> COMMAND's parser --parse--> args --mindtf.cli.COMMAND.run(args)--> exit code
                          (unknown options: COMMAND.explain_unknown -> exit 2)

:func:`main` is the one boundary between mindtf and the shell: whatever a command raises becomes
one line on stderr and an exit code::

    MindtfError (a bad option, config, checkpoint, dataset) --> "error: ..."                exit 1
    OSError (a run folder that is a file, read-only, a full disk) --> "error: ... fix"     exit 1
    Ctrl-C / SIGTERM (mindtf.errors.Interrupted: what was kept, how to resume) --> "..."   exit 130
    anything else: a bug, with its traceback

``--debug`` (or ``MINDTF_DEBUG=1``) shows the traceback of every error instead.

Modules are imported only when their command runs, so ``python -m mindtf fetch`` does not pay for
importing MindSpore.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import Dict, Optional, Sequence, Tuple

__all__ = ["COMMANDS", "build_parser", "main", "DEBUG_ENV"]

#: set to 1 to see the traceback of every error (as --debug)
DEBUG_ENV = "MINDTF_DEBUG"
DEBUG_HELP = f"show the full traceback of an error (also: {DEBUG_ENV}=1)"

# name -> (module under mindtf.cli, one-line help)
COMMANDS = {
    "env": ("env", "print versions, the device in use and thread settings, with fixes for "
                   "problems"),
    "fetch": ("fetch", "download a dataset (with mirrors, resume and sha256 checks)"),
    "train": ("train", "train a model from a config file and/or flags"),
    "generate": ("generate", "continue a prompt with a trained GPT checkpoint"),
    "translate": ("translate", "translate sentences with a trained Transformer checkpoint"),
    "quickstart": ("quickstart", "fetch Tiny Shakespeare, train a small character GPT on this "
                                 "machine, print a sample and save a checkpoint and a loss plot"),
    "ladder": ("ladder", "the perplexity ladder on Tiny Shakespeare: unigram, bigram, trigram, "
                         "5-gram, NNLM and GPT on the same validation text"),
}


def _module_name(command: str) -> str:
    return f"mindtf.cli.{COMMANDS[command][0]}"


def _parsers(only: Optional[str] = None
             ) -> Tuple[argparse.ArgumentParser, Dict[str, argparse.ArgumentParser]]:
    from mindtf.version import __version__

    parser = argparse.ArgumentParser(
        prog="python -m mindtf",
        description="mindtf: build large language models step by step on MindSpore.",
        epilog="Run 'python -m mindtf COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"mindtf {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = {}
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        commands[name] = p
        # after the command too; SUPPRESS: not given here keeps what the top level parsed
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        if only is None or only == name:
            try:
                importlib.import_module(_module_name(name)).add_arguments(p)
            except ModuleNotFoundError as exc:
                if exc.name != _module_name(name):
                    raise
    return parser, commands


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser of every command (importing their modules); with ``only``, just that
    command's module is imported and the other commands have no options."""
    return _parsers(only)[0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``python -m mindtf ARGV``; returns the exit code (argparse exits 2 on bad options)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    # only the chosen command's module is imported ("" = none: top-level help, a typo)
    parser, commands = _parsers(only=chosen if chosen in COMMANDS else "")
    args, extras = parser.parse_known_args(argv)
    if not args.command:
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        parser.print_help()
        return 0
    try:
        module = importlib.import_module(_module_name(args.command))
    except ModuleNotFoundError as exc:
        if exc.name != _module_name(args.command):
            raise
        print(f"'{args.command}' is not available in this version of mindtf yet.", file=sys.stderr)
        return 2
    if extras:
        explain = getattr(module, "explain_unknown", None)
        commands[args.command].error((explain(extras) if explain else None)
                                     or f"unrecognized arguments: {' '.join(extras)}")
    args.command_line = argv  # what a command that starts itself again (train --distributed) reruns
    debug = args.debug or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (mindtf.errors.Interrupted)
        if debug:
            raise
        print(f"\n{_interrupted_message(exc)}", file=sys.stderr)
        return 130
    except Exception as exc:
        from mindtf.errors import MindtfError

        if debug or not isinstance(exc, (MindtfError, OSError)):
            raise  # a bug: its traceback is the report
        print(f"error: {_os_message(exc) if isinstance(exc, OSError) else exc}", file=sys.stderr)
        return 1


def _interrupted_message(exc: KeyboardInterrupt) -> str:
    """What was kept, and for a training run how to go on."""
    from pathlib import Path

    from mindtf.config import RUN_CONFIG

    text = str(exc) or "interrupted"
    run_dir = getattr(exc, "run_dir", None)
    if run_dir and (Path(run_dir) / RUN_CONFIG).is_file():
        text += f"\ncontinue: python -m mindtf train --resume --train.out_dir {run_dir}"
    return text


_OS_FIXES = {
    errno.ENOSPC: "the disk is full: free some space or choose a folder on another disk "
                  "(--train.out_dir); the last complete checkpoint is kept",
    errno.EDQUOT: "the disk quota is used up: free some space or choose another folder",
    errno.EROFS: "the file system is read-only: choose a folder you can write to",
    errno.EACCES: "permission denied: choose a folder you can write to",
    errno.EPERM: "permission denied: choose a folder you can write to",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "a folder is in the way of a file: choose another path",
    errno.EEXIST: "something is in the way: choose another path",
    errno.ENOENT: "no such file or folder: check the path",
}


def _os_message(exc: OSError) -> str:
    """An OSError as one line: the path, what happened, the fix."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc)
    fix = _OS_FIXES.get(exc.errno)
    return f"{where}{what}" + (f" ({fix})." if fix else "")


if __name__ == "__main__":
    sys.exit(main())
