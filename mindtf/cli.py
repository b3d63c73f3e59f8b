"""The ``python -m mindtf`` command line.

Each sub-command lives in its own module under :mod:`mindtf.commands` and provides
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when their command
runs, so ``python -m mindtf fetch`` does not pay for importing MindSpore.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

# name -> (module, one-line help)
COMMANDS = {
    "env": ("env", "print versions, the device in use and thread settings, with fixes for problems"),
    "fetch": ("fetch", "download a dataset (with mirrors, resume and sha256 checks)"),
    "train": ("train", "train a model from a config file and/or flags"),
    "generate": ("generate", "continue a prompt with a trained GPT checkpoint"),
    "translate": ("translate", "translate sentences with a trained Transformer checkpoint"),
    "quickstart": ("quickstart", "fetch Tiny Shakespeare, train a small character GPT on this "
                                 "machine, print a sample and save a checkpoint and a loss plot"),
}


def _load(name: str):
    return importlib.import_module(f"mindtf.commands.{COMMANDS[name][0]}")


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that sub-command's module is imported."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="python -m mindtf",
        description="mindtf: build large language models step by step on MindSpore.",
        epilog="Run 'python -m mindtf COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"mindtf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if only is None or only == name:
            try:
                _load(name).add_arguments(p)
            except ModuleNotFoundError as exc:
                if exc.name != f"mindtf.commands.{COMMANDS[name][0]}":
                    raise
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        module = _load(args.command)
    except ModuleNotFoundError:
        print(f"'{args.command}' is not available in this version of mindtf yet.", file=sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a clear one-line error instead of a traceback for known failures
        from .errors import MindtfError

        if isinstance(exc, MindtfError):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
