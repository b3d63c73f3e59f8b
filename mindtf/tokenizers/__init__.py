"""Tokenizers for the course, from the simplest to GPT-2's (pure Python, no MindSpore needed).

* :class:`CharTokenizer` — one token per character (Tiny Shakespeare, nanoGPT style);
* :func:`tokenize` / :func:`detokenize`, :class:`Vocab`, :class:`WordTokenizer` — word level, for
  translation (Multi30k);
* :class:`ByteLevelBPE` — GPT-2's byte-level BPE: train your own, or load GPT-2-format
  ``vocab.json`` + ``merges.txt``;
* :class:`BPEVocab` — a joint byte-level BPE vocabulary for translation (no ``<unk>``).
"""
from __future__ import annotations

from mindtf.tokenizers.bpe import ENDOFTEXT, ByteLevelBPE
from mindtf.tokenizers.bpe_vocab import BPE_SPECIALS, BPEVocab
from mindtf.tokenizers.bytes_unicode import GPT2_PATTERN, pretokenize
from mindtf.tokenizers.char import CharTokenizer
from mindtf.tokenizers.word import SPECIALS, Vocab, WordTokenizer, detokenize, tokenize

__all__ = ["CharTokenizer", "Vocab", "WordTokenizer", "ByteLevelBPE", "BPEVocab", "tokenize",
           "detokenize", "pretokenize", "GPT2_PATTERN", "ENDOFTEXT", "SPECIALS", "BPE_SPECIALS"]
