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
    from mindtf.errors import InputError, Interrupted, check_range
    from mindtf.recipes.translation import load_translator, translate_sentences
    from mindtf.runtime import stop_signals

    for name, lo, hi in (("beam", 1, 64), ("max_len", 1, None), ("batch_size", 1, 4096),
                         ("seed", 0, 2**32 - 1)):
        check_range(name, getattr(args, name), lo, hi, integer=True, optional=True,
                    error=InputError)
    check_range("length_penalty", args.length_penalty, 0, optional=True, error=InputError,
                fix="0 turns it off; 0.6 is GNMT's.")
    lines = _read_inputs(args)
    setup_runtime(args, "pynative", args.seed)
    model, src_vocab, tgt_vocab, settings = load_translator(args.checkpoint)
    beam = args.beam if args.beam is not None else int(settings.get("beam_size", 4))
    alpha = (args.length_penalty if args.length_penalty is not None
             else float(settings.get("length_penalty", 0.6)))
    max_src = min(int(settings.get("max_len", model.config.max_len)), model.config.max_len)
    todo = [i for i, line in enumerate(lines) if line.strip()]  # blank lines stay blank
    outputs = {}
    printed = 0  # lines printed so far, in input order, as their batches are done
    chunk = 4 * args.batch_size  # sorted by length and batched within a chunk
    with stop_signals("stopping after these sentences") as stop:
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            hyps = translate_sentences(model, [lines[i].strip() for i in part], src_vocab,
                                       tgt_vocab, lowercase=bool(settings.get("lowercase", True)),
                                       beam_size=beam, length_penalty=alpha,
                                       batch_size=args.batch_size, max_len=args.max_len,
                                       max_src_len=max_src)
            outputs.update(zip(part, hyps))
            end = part[-1] + 1 if start + chunk < len(todo) else len(lines)
            print("\n".join(outputs.get(i, "") for i in range(printed, end)), flush=True)
            printed = end
            if stop and printed < len(lines):
                raise Interrupted(f"translation interrupted after {printed} of {len(lines)} "
                                  "lines (those are printed above)")
    for _ in range(printed, len(lines)):  # only blank lines
        print()
    return 0
