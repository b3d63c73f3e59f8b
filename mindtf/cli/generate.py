"""``python -m mindtf generate``: continue a prompt with a GPT checkpoint.

One sample is printed token by token as it is generated; several samples are printed together at
the end, with a progress bar meanwhile. Ctrl-C stops at the next token: what was generated so far
is printed (or stays printed) and the command exits with code 130.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindtf.cli.common import add_runtime_arguments

    parser.add_argument("--checkpoint", required=True,
                        help="a checkpoint folder (config.json, model.safetensors, "
                             "tokenizer.json), e.g. runs/quickstart/checkpoints/best")
    parser.add_argument("--prompt", default="\n", help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=200,
                        help="tokens to generate (at most 100,000)")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=None,
                        help="sample from the k most likely tokens only (>= 1)")
    parser.add_argument("--top-p", type=float, default=None,
                        help="sample from the most likely tokens that make up probability p, "
                             "in (0, 1]")
    parser.add_argument("--repetition-penalty", type=float, default=1.0,
                        help="> 0; 1 = none, above 1 discourages repeating tokens")
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np

    from mindtf.cli.common import setup_runtime
    from mindtf.decoding.gpt_sampling import check_sampling, generate
    from mindtf.errors import CheckpointError, InputError, Interrupted, check_range
    from mindtf.models.gpt import GPT
    from mindtf.recipes.char_lm_setup import load_tokenizer
    from mindtf.training.checkpoints import check_tokenizer_files, find_checkpoint

    # every option is checked before anything is loaded
    check_sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p,
                   args.repetition_penalty)
    check_range("num_samples", args.num_samples, 1, 1024, integer=True, error=InputError)
    check_range("seed", args.seed, 0, 2**32 - 1, integer=True, error=InputError)
    ckpt = find_checkpoint(args.checkpoint)  # a checkpoint folder, or a run folder's best
    if not (ckpt / "tokenizer.json").is_file():
        raise CheckpointError(f"{ckpt / 'tokenizer.json'} not found: pass a checkpoint folder "
                              "written by a mindtf training run (e.g. "
                              "runs/quickstart/checkpoints/best).")
    check_tokenizer_files(ckpt)
    tok = load_tokenizer(ckpt)
    setup_runtime(args, "pynative", args.seed)
    model = GPT.from_pretrained(ckpt)
    if tok.vocab_size > model.config.vocab_size:
        raise CheckpointError(f"{ckpt}: the tokenizer has {tok.vocab_size} tokens but the model "
                              f"only {model.config.vocab_size}: they are not a pair. Use the "
                              "tokenizer.json written with these weights.")
    prompt = np.array([tok.encode(args.prompt)] * args.num_samples, dtype=np.int32)
    stream = args.num_samples == 1

    def print_token(col: np.ndarray) -> None:
        sys.stdout.write(tok.decode([int(col[0])]))
        sys.stdout.flush()

    if stream:
        sys.stdout.write(args.prompt)
    try:
        out = generate(model, prompt, args.max_new_tokens, temperature=args.temperature,
                       top_k=args.top_k, top_p=args.top_p,
                       repetition_penalty=args.repetition_penalty, seed=args.seed,
                       on_token=print_token if stream else None,
                       progress=None if stream else args.max_new_tokens >= 20)
    except Interrupted as exc:
        if not stream:
            _print_samples(tok, exc.partial)
        print()
        raise
    if stream:
        print()
    else:
        _print_samples(tok, out)
    return 0


def _print_samples(tok, rows) -> None:
    for i, row in enumerate(rows):
        print(f"--- sample {i + 1}")
        print(tok.decode(row.tolist()))
