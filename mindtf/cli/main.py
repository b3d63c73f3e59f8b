"""The ``python -m mindtf`` command line: argument dispatch.

Each sub-command lives in its own module under :mod:`mindtf.cli` and provides
``add_arguments(parser)`` and ``run(args) -> int`` (and optionally
``explain_unknown(extras) -> message or None`` for a better error about unknown options)::

    argv --_parsers--> COMMAND's parser --parse--> args --mindtf.cli.COMMAND.run(args)--> exit code
                          (unknown options: COMMAND.explain_unknown -> exit 2)
                          (a MindtfError in run: "error: ..." on stderr -> exit 1)

Modules are imported only when their command runs, so ``python -m mindtf fetch`` does not pay for
importing MindSpore.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Dict, Optional, Sequence, Tuple

__all__ = ["COMMANDS", "build_parser", "main"]

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = {}
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        commands[name] = p
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
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a clear one-line error instead of a traceback for known failures
        from mindtf.errors import MindtfError

        if isinstance(exc, MindtfError):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
