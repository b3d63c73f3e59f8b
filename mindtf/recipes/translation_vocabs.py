"""The translation recipe's vocabularies: word-level (``<unk>`` for rare words) or one joint
byte-level BPE (no ``<unk>``), built on the training split, saved in every checkpoint.

Nothing here imports MindSpore.

::

    data.tokenizer = "word": tokenize (lowercase?) --> Vocab per side, words seen >= min_freq times
                             (others -> <unk>); files src_vocab.json, tgt_vocab.json
    data.tokenizer = "bpe":  German + English training sentences --> one BPEVocab of
                             bpe_vocab_size tokens (bytes, merges, <pad> <bos> <eos>), both sides;
                             files vocab.json, merges.txt (GPT-2's format)
    both: translation.json holds the settings (tokenizer, lowercase, direction, decoding)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

from mindtf.errors import CheckpointError, InputError
from mindtf.tokenizers.bpe_vocab import BPE_FILES, BPEVocab
from mindtf.tokenizers.word import SPECIALS, Vocab, detokenize, tokenize

__all__ = ["TranslationVocabs", "build_vocabs", "numericalise", "tokenize_fn", "text_functions",
           "load_vocabs", "SETTINGS_FILE", "WORD_FILES", "TOKENIZERS"]

#: written next to the weights of every translation checkpoint
SETTINGS_FILE = "translation.json"
#: the vocabulary files of a word-level checkpoint
WORD_FILES = ("src_vocab.json", "tgt_vocab.json")
#: the choices of ``TranslationData.tokenizer``
TOKENIZERS = ("word", "bpe")


def tokenize_fn(lowercase: bool) -> Callable[[str], List[str]]:
    """The source/target word tokenizer of the recipe (lowercasing or not)."""
    return lambda text: tokenize(text, lowercase)


@dataclass
class TranslationVocabs:
    """The source and target vocabularies (one object for both when joint)."""

    src: Any  # mindtf.tokenizers.word.Vocab or mindtf.tokenizers.bpe_vocab.BPEVocab
    tgt: Any
    kind: str = "word"  # "word" | "bpe"

    @property
    def files(self) -> Tuple[str, ...]:
        """The files :meth:`save` writes that decide how text becomes ids."""
        return BPE_FILES if self.kind == "bpe" else WORD_FILES

    def save(self, folder: Path, settings: Dict[str, Any]) -> None:
        folder = Path(folder)
        if self.kind == "bpe":
            self.src.save(folder)
        else:
            self.src.save(folder / WORD_FILES[0])
            self.tgt.save(folder / WORD_FILES[1])
        (folder / SETTINGS_FILE).write_text(json.dumps({**settings, "tokenizer": self.kind},
                                                       indent=2), encoding="utf-8")

    def describe(self) -> str:
        if self.kind == "bpe":
            return (f"one joint byte-level BPE vocabulary of {len(self.src):,} tokens "
                    f"({len(self.src.bpe.merges):,} merges, no <unk>; built on the training "
                    "split)")
        return (f"{len(self.src):,} source and {len(self.tgt):,} target words (built on the "
                "training split)")


def build_vocabs(train_pairs: Sequence[Tuple[str, str]], data: Any,
                 joint: bool = False) -> TranslationVocabs:
    """Vocabularies from the **training** pairs only, as ``data.tokenizer`` says
    (``data``: a :class:`~mindtf.recipes.translation_setup.TranslationData`).

    * ``"word"``: specials ``<unk> <pad> <bos> <eos>`` first, so ``<pad>`` is id 1 whatever the
      corpus; words seen fewer than ``min_freq`` times are left out (``<unk>``). ``joint``: one
      vocabulary for both sides (needed by ``share_embeddings``).
    * ``"bpe"``: one :class:`~mindtf.tokenizers.bpe_vocab.BPEVocab` of ``bpe_vocab_size`` tokens
      trained on both sides together (always joint).
    """
    if getattr(data, "tokenizer", "word") == "bpe":
        texts = [s for s, _ in train_pairs] + [t for _, t in train_pairs]
        vocab = BPEVocab.train(texts, data.bpe_vocab_size, lowercase=data.lowercase)
        return TranslationVocabs(vocab, vocab, "bpe")
    tok = tokenize_fn(data.lowercase)
    src_tokens = [tok(s) for s, _ in train_pairs]
    tgt_tokens = [tok(t) for _, t in train_pairs]
    if joint:
        vocab = Vocab.build(src_tokens + tgt_tokens, min_freq=data.min_freq, specials=SPECIALS)
        return TranslationVocabs(vocab, vocab)
    return TranslationVocabs(Vocab.build(src_tokens, min_freq=data.min_freq, specials=SPECIALS),
                             Vocab.build(tgt_tokens, min_freq=data.min_freq, specials=SPECIALS))


def numericalise(pairs: Sequence[Tuple[str, str]], vocabs: TranslationVocabs,
                 lowercase: bool) -> List[Tuple[List[int], List[int]]]:
    """Sentence pairs -> ``(source ids, target ids)`` without ``<bos>``/``<eos>`` (the batcher
    adds them to the target)."""
    if vocabs.kind == "bpe":  # (lowercasing is the BPEVocab's own setting)
        encode = vocabs.src.encode
        return [(encode(s), encode(t)) for s, t in pairs]
    tok = tokenize_fn(lowercase)
    return [(vocabs.src.lookup(tok(s)), vocabs.tgt.lookup(tok(t))) for s, t in pairs]


def text_functions(src_vocab: Any, tgt_vocab: Any, lowercase: bool
                   ) -> Tuple[Callable[[str], List[str]], Callable[[List[str]], str]]:
    """``(tokenize, detokenize)`` for :func:`mindtf.decoding.seq2seq_search.translate`: the BPE
    vocabulary's own, or the word tokenizer and :func:`mindtf.tokenizers.word.detokenize`."""
    tok = src_vocab.tokenize if isinstance(src_vocab, BPEVocab) else tokenize_fn(lowercase)
    detok = tgt_vocab.detokenize if isinstance(tgt_vocab, BPEVocab) else detokenize
    return tok, detok


def load_vocabs(folder: Path, settings: Dict[str, Any]) -> TranslationVocabs:
    """The vocabularies a checkpoint folder holds (``settings``: its ``translation.json``)."""
    folder = Path(folder)
    kind = settings.get("tokenizer", "word")
    if kind not in TOKENIZERS:
        raise CheckpointError(f"{folder / SETTINGS_FILE}: unknown tokenizer {kind!r} (expected "
                              f"one of {TOKENIZERS}); use the file the training run wrote.")
    names = BPE_FILES if kind == "bpe" else WORD_FILES
    for name in names:
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder / name} not found: pass a checkpoint folder written "
                                  "by 'python -m mindtf train --task translation' (e.g. "
                                  "runs/multi30k/checkpoints/best) or its run folder.")
    try:
        if kind == "bpe":
            vocab = BPEVocab.load(folder, lowercase=bool(settings.get("lowercase", False)))
            return TranslationVocabs(vocab, vocab, "bpe")
        return TranslationVocabs(Vocab.load(folder / WORD_FILES[0]),
                                 Vocab.load(folder / WORD_FILES[1]))
    except (ValueError, KeyError, TypeError, AttributeError, OSError, InputError) as exc:
        raise CheckpointError(f"{folder}: a vocabulary file is damaged ({exc}); use the ones the "
                              "training run wrote.") from None
