"""Options shared by the training commands: device/runtime and dataset fetching."""
from __future__ import annotations

import argparse
from typing import Any, Dict


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("runtime")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu", "ascend"],
                   help="where to run (auto: Ascend > GPU > CPU)")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU op threads (default: the cores available to this process)")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--mirror", default=None, metavar="DIR_OR_URL[,...]",
                   help="dataset mirror(s) tried first (default: $MINDTF_DATA_MIRROR)")
    g.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where datasets are kept (default: $MINDTF_DATA_DIR or the checkout's data/)")
    g.add_argument("--offline", action="store_true", help="never use the network")


def fetch_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    kw: Dict[str, Any] = {}
    if getattr(args, "mirror", None):
        kw["mirror"] = args.mirror
    if getattr(args, "data_dir", None):
        kw["data_dir"] = args.data_dir
    if getattr(args, "offline", False):
        kw["offline"] = True
    return kw


def setup_runtime(args: argparse.Namespace, mode: str, seed: int):
    from ..runtime import setup

    return setup(device=args.device, mode=mode, seed=seed, threads=args.threads)
