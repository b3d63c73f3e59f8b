"""``python -m mindtf ladder``: the perplexity ladder on Tiny Shakespeare's characters.

Counts unigram, bigram, trigram and 5-gram models (Kneser-Ney), trains Bengio et al.'s neural LM
(about 2.5 minutes on 2 cores), reuses the quickstart GPT (``runs/quickstart``; trained there
first if it holds no checkpoint, about 3 minutes) and a longer-trained GPT (``OUT/gpt_long``,
about 15 minutes the first time), scores all of them on the same validation characters and
prints the table; ``OUT/ladder.json`` and ``OUT/ladder.png`` keep it.
"""
from __future__ import annotations

import argparse

EXAMPLES = """examples:
  python -m mindtf ladder                           # the README's table (runs/ladder)
  python -m mindtf ladder --smoke --out /tmp/ladder # seconds: a check that everything runs
  python -m mindtf ladder --gpt-run runs/my_char_gpt  # another character GPT on the GPT rung
  python -m mindtf ladder --no-long-gpt             # without the 15-minute GPT
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindtf.cli.common import add_data_arguments, add_runtime_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLES
    parser.add_argument("--out", default="runs/ladder",
                        help="output folder: ladder.json, ladder.png and the NNLM's run "
                             "(default: runs/ladder)")
    parser.add_argument("--gpt-run", default=None,
                        help="the GPT's run folder, reused if it holds a checkpoint and trained "
                             "there with the quickstart settings if not (default: "
                             "runs/quickstart; with --smoke: OUT/gpt)")
    parser.add_argument("--long-gpt-run", default=None,
                        help="the longer GPT's run folder, reused or trained there (default: "
                             "OUT/gpt_long)")
    parser.add_argument("--no-long-gpt", action="store_true",
                        help="leave the longer GPT out (it trains for about 15 minutes)")
    parser.add_argument("--smoke", action="store_true",
                        help="shrink everything (200k training and 5k validation characters, "
                             "30 steps of small networks): seconds, for tests")
    parser.add_argument("--nnlm-steps", type=int, default=None,
                        help="training steps of the NNLM (default: 3000; --smoke: 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data order")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or lines")
    add_runtime_arguments(parser)
    add_data_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from mindtf.cli.common import fetch_kwargs, setup_runtime
    from mindtf.errors import InputError, check_range
    from mindtf.recipes.ladder_setup import ladder_configs

    check_range("seed", args.seed, 0, 2**32 - 1, integer=True, error=InputError)
    plan = ladder_configs(out_dir=args.out, gpt_run=args.gpt_run,
                          long_gpt_run=args.long_gpt_run, long_gpt=not args.no_long_gpt,
                          smoke=args.smoke, seed=args.seed, progress=not args.no_progress)
    if args.nnlm_steps is not None:
        check_range("nnlm_steps", args.nnlm_steps, 1, integer=True, error=InputError)
        plan.nnlm_train = dataclasses.replace(
            plan.nnlm_train, max_steps=args.nnlm_steps,
            warmup_steps=min(plan.nnlm_train.warmup_steps, args.nnlm_steps),
            eval_interval=min(plan.nnlm_train.eval_interval, args.nnlm_steps))
    print(setup_runtime(args, "graph", args.seed))
    from mindtf.recipes.ladder import run_ladder  # imports MindSpore

    run_ladder(plan, fetch_kwargs(args))
    return 0
