"""``python -m mindtf translate``: translate sentences with a trained Transformer checkpoint."""
from __future__ import annotations

import argparse

EPILOG = """\
examples:
  python -m mindtf translate --checkpoint runs/multi30k/checkpoints/best \\
      "Ein Mann fährt Fahrrad." "Zwei Hunde spielen im Schnee."
  python -m mindtf translate --checkpoint runs/multi30k --input sentences.de > out.en
  echo "Eine Frau liest ein Buch." | python -m mindtf translate --checkpoint runs/multi30k

The checkpoint folder is one written by 'python -m mindtf train --task translation'
(config.json, model.safetensors, src_vocab.json, tgt_vocab.json, translation.json); a run
folder works too (its checkpoints/best is used). One translation is printed per input line.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindtf.cli.common import add_runtime_arguments

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("sentences", nargs="*", metavar="SENTENCE",
                        help="sentences to translate (else --input, else standard input)")
    parser.add_argument("--checkpoint", required=True, metavar="DIR",
                        help="checkpoint folder (e.g. runs/multi30k/checkpoints/best) or run "
                             "folder")
    parser.add_argument("--input", metavar="FILE", default=None,
                        help="read sentences from FILE, one per line ('-' = standard input)")
    parser.add_argument("--beam", type=int, default=None, metavar="K",
                        help="beam size; 1 = greedy (default: the training run's, usually 4)")
    parser.add_argument("--length-penalty", type=float, default=None, metavar="A",
                        help="GNMT length penalty alpha for beam search (default: the training "
                             "run's, usually 0.6)")
    parser.add_argument("--max-len", type=int, default=None, metavar="N",
                        help="most tokens to generate per sentence (default: source length + 50)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="B",
                        help="sentences decoded together (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_runtime_arguments(parser)


def _read_inputs(args: argparse.Namespace) -> list:
    import sys

    from mindtf.errors import InputError

    if args.sentences and args.input:
        raise InputError("give sentences either as arguments or with --input, not both.")
    if args.sentences:
        return list(args.sentences)
    if args.input and args.input != "-":
        from pathlib import Path

        path = Path(args.input)
        if not path.is_file():
            raise InputError(f"--input {path}: no such file.")
        return path.read_text(encoding="utf-8").splitlines()
    if args.input is None and sys.stdin.isatty():
        raise InputError("nothing to translate: pass sentences as arguments, --input FILE, or "
                         "pipe text on standard input.")
    return sys.stdin.read().splitlines()


def run(args: argparse.Namespace) -> int:
    from mindtf.cli.common import setup_runtime
    from mindtf.errors import InputError
    from mindtf.recipes.translation import load_translator, translate_sentences

    lines = _read_inputs(args)
    for name in ("beam", "max_len", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {value}.")
    setup_runtime(args, "pynative", args.seed)
    model, src_vocab, tgt_vocab, settings = load_translator(args.checkpoint)
    beam = args.beam if args.beam is not None else int(settings.get("beam_size", 4))
    alpha = (args.length_penalty if args.length_penalty is not None
             else float(settings.get("length_penalty", 0.6)))
    todo = [i for i, line in enumerate(lines) if line.strip()]  # blank lines stay blank
    outputs = [""] * len(lines)
    if todo:
        max_src = min(int(settings.get("max_len", model.config.max_len)), model.config.max_len)
        hyps = translate_sentences(model, [lines[i].strip() for i in todo], src_vocab, tgt_vocab,
                                   lowercase=bool(settings.get("lowercase", True)),
                                   beam_size=beam, length_penalty=alpha,
                                   batch_size=args.batch_size, max_len=args.max_len,
                                   max_src_len=max_src)
        for i, hyp in zip(todo, hyps):
            outputs[i] = hyp
    for out in outputs:
        print(out)
    return 0
