"""``python -m mindtf quickstart``: the README's main job.

Fetches Tiny Shakespeare, trains nanoGPT's small character-level GPT (4 layers, 4 heads, d=128,
block 64, 2000 steps) on this machine with a progress bar, prints the validation loss and a
generated sample, and leaves a checkpoint and a loss plot in ``runs/quickstart``.
"""
from __future__ import annotations

import argparse
import dataclasses


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindtf.cli.common import add_data_arguments, add_runtime_arguments

    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    parser.add_argument("--out", default="runs/quickstart", help="output folder")
    parser.add_argument("--mode", default="graph", choices=["graph", "pynative"],
                        help="graph: compiled (fast); pynative: op by op (for learning)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar or progress lines (MINDTF_PROGRESS=plain|bar|off "
                             "chooses their kind)")
    add_runtime_arguments(parser)
    add_data_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mindtf.cli.common import fetch_kwargs, print_char_lm_summary, setup_runtime
    from mindtf.errors import check_range
    from mindtf.recipes.char_lm import quickstart_configs, train_char_lm
    from mindtf.training.checkpoints import check_run_folder

    check_range("steps", args.steps, 1, integer=True)
    check_run_folder(args.out)
    model_cfg, train_cfg, data = quickstart_configs()
    train_cfg = dataclasses.replace(
        train_cfg, max_steps=args.steps, out_dir=args.out, mode=args.mode, seed=args.seed,
        warmup_steps=min(train_cfg.warmup_steps, args.steps), progress=not args.no_progress,
        eval_interval=min(train_cfg.eval_interval, args.steps))
    print(setup_runtime(args, args.mode, args.seed))
    print_char_lm_summary(train_char_lm(model_cfg, train_cfg, data, fetch_kwargs(args)))
    return 0
