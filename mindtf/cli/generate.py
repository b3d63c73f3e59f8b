"""``python -m mindtf generate``: continue a prompt with a GPT checkpoint."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindtf.cli.common import add_runtime_arguments

    parser.add_argument("--checkpoint", required=True,
                        help="a checkpoint folder (config.json, model.safetensors, "
                             "tokenizer.json), e.g. runs/quickstart/checkpoints/best")
    parser.add_argument("--prompt", default="\n", help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--repetition-penalty", type=float, default=1.0)
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mindtf.cli.common import setup_runtime
    from mindtf.decoding.gpt_sampling import generate
    from mindtf.errors import CheckpointError
    from mindtf.models.gpt import GPT
    from mindtf.recipes.char_lm_setup import load_tokenizer
    from mindtf.training.checkpoints import find_checkpoint

    ckpt = find_checkpoint(args.checkpoint)  # a checkpoint folder, or a run folder's best
    if not (ckpt / "tokenizer.json").is_file():
        raise CheckpointError(f"{ckpt / 'tokenizer.json'} not found: pass a checkpoint folder "
                              "written by a mindtf training run (e.g. "
                              "runs/quickstart/checkpoints/best).")
    setup_runtime(args, "pynative", args.seed)
    tok = load_tokenizer(ckpt)
    model = GPT.from_pretrained(ckpt)
    prompt = np.array([tok.encode(args.prompt)] * args.num_samples, dtype=np.int32)
    out = generate(model, prompt, args.max_new_tokens, temperature=args.temperature,
                   top_k=args.top_k, top_p=args.top_p,
                   repetition_penalty=args.repetition_penalty, seed=args.seed)
    for i, row in enumerate(out):
        if args.num_samples > 1:
            print(f"--- sample {i + 1}")
        print(tok.decode(row.tolist()))
    return 0
