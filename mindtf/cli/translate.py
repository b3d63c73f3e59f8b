"""``python -m mindtf translate``: translate sentences or a whole file with a trained Transformer
checkpoint, and score the result with sacreBLEU when references are given.

::

    SENTENCE ... | --input FILE | standard input --> one line each
        --> non-blank lines, in chunks of 4 x batch_size (sorted by length inside a chunk)
        --> batched beam search (the training run's beam size and length penalty by default)
        --> one translation per line, in input order --> --output FILE or standard output
        --> with --ref FILE: sacreBLEU of all lines, with its signature
"""
from __future__ import annotations

import argparse

EPILOG = """\
examples:
  python -m mindtf translate --checkpoint runs/multi30k/checkpoints/best \\
      "Ein Mann fährt Fahrrad." "Zwei Hunde spielen im Schnee."
  python -m mindtf translate --checkpoint runs/multi30k --input sentences.de > out.en
  echo "Eine Frau liest ein Buch." | python -m mindtf translate --checkpoint runs/multi30k
  python -m mindtf translate --checkpoint runs/multi30k --input test2016.de \\
      --output test2016.hyp.en --ref test2016.en

The checkpoint folder is one written by 'python -m mindtf train --task translation'
(config.json, model.safetensors, translation.json and the vocabulary: src_vocab.json +
tgt_vocab.json, or BPE's vocab.json + merges.txt); a run folder works too (its checkpoints/best
is used). One translation is written per input line (a blank line stays blank); a line longer
than the model reads is cut, and a note on standard error says which lines were. With --ref, the
BLEU score (sacreBLEU, its signature; lowercased if the model was trained lowercased) is printed
on standard output when --output is a file, else on standard error.
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
    parser.add_argument("--output", metavar="FILE", default=None,
                        help="write the translations to FILE, one per line ('-' or none: "
                             "standard output)")
    parser.add_argument("--ref", metavar="FILE", default=None,
                        help="reference translations, one per input line: print sacreBLEU "
                             "(with its signature) of the translations against them")
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


def _read_lines(path_text: str, flag: str) -> list:
    from pathlib import Path

    from mindtf.errors import InputError

    path = Path(path_text)
    if not path.is_file():
        raise InputError(f"{flag} {path}: no such file.")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"{flag} {path} is not UTF-8 text ({exc}); convert it, e.g. with "
                         "iconv -t utf-8.") from None


def _read_inputs(args: argparse.Namespace) -> list:
    import sys

    from mindtf.errors import InputError

    if args.sentences and args.input:
        raise InputError("give sentences either as arguments or with --input, not both.")
    if args.sentences:
        return list(args.sentences)
    if args.input and args.input != "-":
        return _read_lines(args.input, "--input")
    if args.input is None and sys.stdin.isatty():
        raise InputError("nothing to translate: pass sentences as arguments, --input FILE, or "
                         "pipe text on standard input.")
    return sys.stdin.read().splitlines()


def _cut_note(too_long: list, limit: int) -> str:
    shown = ", ".join(str(i + 1) for i in too_long[:10]) + (", ..." if len(too_long) > 10 else "")
    return (f"note: {len(too_long)} line(s) have more than {limit} source tokens, the most this "
            f"model reads (its training max_len / position table): only their first {limit} "
            f"tokens were translated (line {shown}). Split long sentences for whole "
            "translations.")


def run(args: argparse.Namespace) -> int:
    import sys

    from mindtf.cli.common import setup_runtime
    from mindtf.errors import InputError, Interrupted, check_range
    from mindtf.progress import progress
    from mindtf.recipes.translation import load_translator, translate_sentences
    from mindtf.recipes.translation_vocabs import text_functions
    from mindtf.runtime import stop_signals

    for name, lo, hi in (("beam", 1, 64), ("max_len", 1, None), ("batch_size", 1, 4096),
                         ("seed", 0, 2**32 - 1)):
        check_range(name, getattr(args, name), lo, hi, integer=True, optional=True,
                    error=InputError)
    check_range("length_penalty", args.length_penalty, 0, optional=True, error=InputError,
                fix="0 turns it off; 0.6 is GNMT's.")
    lines = _read_inputs(args)
    refs = _read_lines(args.ref, "--ref") if args.ref else None
    if refs is not None and len(refs) != len(lines):
        raise InputError(f"--ref has {len(refs)} lines but there are {len(lines)} input lines: "
                         "give one reference per input line, in the same order.")
    setup_runtime(args, "pynative", args.seed)
    model, src_vocab, tgt_vocab, settings = load_translator(args.checkpoint)
    lowercase = bool(settings.get("lowercase", True))
    beam = args.beam if args.beam is not None else int(settings.get("beam_size", 4))
    alpha = (args.length_penalty if args.length_penalty is not None
             else float(settings.get("length_penalty", 0.6)))
    max_src = min(int(settings.get("max_len", model.config.max_len)), model.config.max_len)
    if args.max_len is not None and args.max_len > model.config.max_len:
        raise InputError(f"--max-len {args.max_len}: the model's position table holds "
                         f"{model.config.max_len} target positions; use --max-len <= "
                         f"{model.config.max_len}.")
    todo = [i for i, line in enumerate(lines) if line.strip()]  # blank lines stay blank
    tok, _ = text_functions(src_vocab, tgt_vocab, lowercase)
    too_long = [i for i in todo if len(tok(lines[i].strip())) > max_src]
    to_file = bool(args.output) and args.output != "-"
    out = open(args.output, "w", encoding="utf-8") if to_file else sys.stdout
    outputs: dict = {}
    hyps: list = []
    printed = 0  # lines written so far, in input order, as their batches are done
    chunk = 4 * args.batch_size  # sorted by length and batched within a chunk
    try:
        with stop_signals("stopping after these sentences") as stop, \
                progress(len(todo), "translating", "sentence", log_every=chunk,
                         disable=len(todo) <= args.batch_size) as bar:
            for start in range(0, len(todo), chunk):
                part = todo[start:start + chunk]
                done = translate_sentences(model, [lines[i].strip() for i in part], src_vocab,
                                           tgt_vocab, lowercase=lowercase, beam_size=beam,
                                           length_penalty=alpha, batch_size=args.batch_size,
                                           max_len=args.max_len, max_src_len=max_src)
                outputs.update(zip(part, done))
                end = part[-1] + 1 if start + chunk < len(todo) else len(lines)
                new = [outputs.get(i, "") for i in range(printed, end)]
                out.write("".join(h + "\n" for h in new))
                out.flush()
                hyps += new
                printed = end
                bar.update(len(part))
                if stop and printed < len(lines):
                    where = f"in {args.output}" if to_file else "above"
                    raise Interrupted(f"translation interrupted after {printed} of {len(lines)} "
                                      f"lines (those are written {where})")
        new = [""] * (len(lines) - printed)  # only blank lines are left
        out.write("".join(h + "\n" for h in new))
        hyps += new
    finally:
        if to_file:
            out.close()
    if too_long:
        print(_cut_note(too_long, max_src), file=sys.stderr)
    if refs is not None:
        from mindtf.metrics import corpus_bleu

        result = corpus_bleu(hyps, refs, lowercase=lowercase)
        print(str(result), file=sys.stdout if to_file else sys.stderr, flush=True)
    return 0
