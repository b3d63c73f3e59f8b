"""Byte-level BPE: the tokenizer of GPT-2 (GPT-4 and Llama 3 use the same idea with other regexes).

A :class:`ByteLevelBPE` is two tables:

* ``vocab``: token string -> id. Token strings are written with GPT-2's printable byte stand-ins
  (see :mod:`mindtf.tokenizers.bytes_unicode`), so ``" the"`` is stored as ``"Ġthe"``;
* ``merges``: the ordered list of pairs learnt in training. A pair's position is its *rank*:
  lower rank = learnt earlier = merged first.

**Encoding** a text: split it into pre-tokens with GPT-2's regex, turn each pre-token into byte
symbols, then repeatedly merge the adjacent pair with the lowest rank until no adjacent pair is in
the merge list; look the resulting tokens up in ``vocab``. Many pre-tokens repeat (``" the"``), so
the result for each is cached.

**Decoding** is a lookup: id -> token string -> bytes -> UTF-8 text. Because the base alphabet is
all 256 bytes, ``decode(encode(s)) == s`` for every string ``s``.

    >>> bpe = ByteLevelBPE.train("the cat sat on the mat. " * 20, vocab_size=270)
    >>> ids = bpe.encode("the cat<|endoftext|>", allowed_special="all")
    >>> [bpe.id_to_token(i) for i in ids]
    ['the', 'Ġcat', '<|endoftext|>']
    >>> bpe.decode(ids)
    'the cat<|endoftext|>'

Files are in GPT-2's format (``vocab.json`` + ``merges.txt``), so :meth:`ByteLevelBPE.from_files`
reads GPT-2's own files and Hugging Face ``tokenizers`` reads the files :meth:`ByteLevelBPE.save`
writes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Collection, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import regex

from mindtf.errors import InputError
from mindtf.tokenizers.bpe_train import count_pretokens, learn_merges
from mindtf.tokenizers.bytes_unicode import (BYTE_TO_UNICODE, GPT2_PATTERN, UNICODE_TO_BYTE,
                                             bytes_to_symbols)

__all__ = ["ByteLevelBPE", "ENDOFTEXT"]

#: GPT-2's end-of-document token
ENDOFTEXT = "<|endoftext|>"
PathLike = Union[str, "os.PathLike[str]"]
_CACHE_LIMIT = 100_000  # pre-tokens whose encoding we remember (then the cache starts over)


class ByteLevelBPE:
    """A byte-level BPE tokenizer: GPT-2's algorithm and file format.

    Args:
        vocab: token string (byte stand-in form) -> id; includes the special tokens.
        merges: the learnt pairs, in rank order.
        special_tokens: tokens matched verbatim in the text and never split or merged
            (e.g. ``"<|endoftext|>"``); each must be in ``vocab``.
        pattern: the pre-tokenisation regex (default: GPT-2's).
    """

    def __init__(self, vocab: Dict[str, int], merges: Sequence[Tuple[str, str]],
                 special_tokens: Sequence[str] = (), pattern: str = GPT2_PATTERN) -> None:
        missing = [t for t in special_tokens if t not in vocab]
        if missing:
            raise InputError(f"special tokens {missing} are not in the vocabulary; add them first")
        self.vocab: Dict[str, int] = dict(vocab)
        self.merges: List[Tuple[str, str]] = [tuple(m) for m in merges]  # type: ignore[misc]
        self.ranks: Dict[Tuple[str, str], int] = {pair: r for r, pair in enumerate(self.merges)}
        self.special_tokens: Dict[str, int] = {t: vocab[t] for t in special_tokens}
        self.pattern = pattern
        self._regex = regex.compile(pattern)
        self._id_to_token: Dict[int, str] = {i: t for t, i in self.vocab.items()}
        self._special_by_id: Dict[int, str] = {i: t for t, i in self.special_tokens.items()}
        self._cache: Dict[str, List[int]] = {}

    # ----------------------------------------------------------------------------------- training
    @classmethod
    def train(cls, data: Union[str, Iterable[str]], vocab_size: int,
              special_tokens: Sequence[str] = (ENDOFTEXT,),
              pattern: str = GPT2_PATTERN) -> "ByteLevelBPE":
        """Learn a tokenizer with ``vocab_size`` tokens (256 bytes + merges + special tokens).

        ``data`` is one string or an iterable of strings (e.g. documents). Occurrences of the
        special tokens in the data are cut out before counting, so they are never merged. The
        vocabulary can come out smaller than asked when the corpus runs out of pairs to merge.

        Ids: 0..255 are the bytes (in GPT-2's order), then one id per merge, then the specials.
        """
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise InputError(f"vocab_size={vocab_size} is too small: it must hold the 256 byte "
                             f"tokens and {len(special_tokens)} special tokens")
        texts = [data] if isinstance(data, str) else data
        if special_tokens:
            splitter = _special_regex(special_tokens)
            # split() keeps the matched special tokens at odd positions: keep only the text between
            texts = (part for text in texts
                     for i, part in enumerate(splitter.split(text)) if i % 2 == 0)
        merges = learn_merges(count_pretokens(texts, regex.compile(pattern)), num_merges)

        vocab = {symbol: i for i, symbol in enumerate(BYTE_TO_UNICODE.values())}
        for a, b in merges:
            vocab.setdefault(a + b, len(vocab))  # two merges can spell the same token: one id
        for token in special_tokens:
            if token in vocab:
                raise InputError(f"special token {token!r} is also an ordinary token; rename it")
            vocab[token] = len(vocab)
        return cls(vocab, merges, special_tokens, pattern)

    # ------------------------------------------------------------------------------------ files
    @classmethod
    def from_files(cls, vocab_json: PathLike, merges_txt: PathLike,
                   special_tokens: Optional[Sequence[str]] = None) -> "ByteLevelBPE":
        """Load GPT-2-format files (``vocab.json``: token -> id; ``merges.txt``: one pair a line).

        With ``special_tokens=None`` the special tokens are found in the vocabulary: tokens that
        are neither a single byte nor the result of a merge (GPT-2's ``<|endoftext|>``).
        """
        with open(vocab_json, encoding="utf-8") as f:
            vocab: Dict[str, int] = json.load(f)
        merges: List[Tuple[str, str]] = []
        with open(merges_txt, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if not line or line.startswith("#version"):
                    continue
                a, sep, b = line.partition(" ")
                if not sep or not a or not b or " " in b:
                    raise InputError(f"{merges_txt}: expected 'left right' per line, got {line!r}")
                merges.append((a, b))
        if special_tokens is None:
            made = {a + b for a, b in merges}
            special_tokens = [t for t in sorted(vocab, key=vocab.__getitem__)
                              if t not in made and t not in UNICODE_TO_BYTE]
        return cls(vocab, merges, special_tokens)

    @classmethod
    def load(cls, directory: PathLike) -> "ByteLevelBPE":
        """Load the ``vocab.json`` and ``merges.txt`` that :meth:`save` wrote to ``directory``."""
        directory = Path(directory)
        return cls.from_files(directory / "vocab.json", directory / "merges.txt")

    def save(self, directory: PathLike) -> Tuple[Path, Path]:
        """Write GPT-2-format ``vocab.json`` + ``merges.txt`` into ``directory``; return paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
        ordered = dict(sorted(self.vocab.items(), key=lambda item: item[1]))
        vocab_path.write_text(json.dumps(ordered, ensure_ascii=False), encoding="utf-8")
        lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in self.merges]
        merges_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return vocab_path, merges_path

    # ---------------------------------------------------------------------------------- lookups
    @property
    def vocab_size(self) -> int:
        """Size of an embedding table that can hold every id (largest id + 1)."""
        return max(self.vocab.values()) + 1

    def token_to_id(self, token: str) -> int:
        return self.vocab[token]

    def id_to_token(self, token_id: int) -> str:
        return self._id_to_token[token_id]

    # --------------------------------------------------------------------------------- encoding
    def encode(self, text: str,
               allowed_special: Union[str, Collection[str]] = ()) -> List[int]:
        """Encode ``text`` to token ids.

        Args:
            allowed_special: special tokens to recognise in ``text`` and encode as their single
                id; ``"all"`` for all of them. Special tokens *not* allowed are encoded as ordinary
                text, so text from untrusted sources cannot inject an ``<|endoftext|>``.
        """
        allowed = self._allowed(allowed_special)
        if not allowed:
            return self._encode_ordinary(text)
        ids: List[int] = []
        for i, part in enumerate(_special_regex(allowed).split(text)):
            if i % 2:  # split() with a capture group: odd parts are the matched special tokens
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self._encode_ordinary(part))
        return ids

    def _allowed(self, allowed_special: Union[str, Collection[str]]) -> List[str]:
        if allowed_special == "all":
            return list(self.special_tokens)
        if isinstance(allowed_special, str):
            raise InputError(f"allowed_special must be 'all' or a collection of tokens, "
                             f"got the string {allowed_special!r}")
        unknown = [t for t in allowed_special if t not in self.special_tokens]
        if unknown:
            raise InputError(f"{unknown} are not special tokens of this tokenizer "
                             f"(it has {list(self.special_tokens)})")
        return list(allowed_special)

    def _encode_ordinary(self, text: str) -> List[int]:
        """Encode text that contains no special tokens: pre-tokenise, then BPE each piece."""
        ids: List[int] = []
        for piece in self._regex.findall(text):
            cached = self._cache.get(piece)
            if cached is None:
                try:
                    data = piece.encode("utf-8")
                except UnicodeEncodeError as err:  # a lone surrogate such as "\ud800"
                    raise InputError(f"text is not valid Unicode: {err}") from None
                tokens = self._bpe(bytes_to_symbols(data))
                try:
                    cached = [self.vocab[t] for t in tokens]
                except KeyError as err:
                    raise InputError(f"BPE produced {err.args[0]!r}, which is not in vocab.json: "
                                     "the vocab and merges files do not belong together") from None
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[piece] = cached
            ids.extend(cached)
        return ids

    def _bpe(self, word: str) -> List[str]:
        """Split one pre-token (in byte symbols) into tokens, applying merges lowest rank first."""
        parts = list(word)
        while len(parts) > 1:
            # the adjacent pair that was learnt first
            pairs = zip(parts, parts[1:])
            best = min(pairs, key=lambda p: self.ranks.get(p, len(self.ranks)))
            if best not in self.ranks:
                break  # no adjacent pair can be merged: done
            a, b = best
            merged: List[str] = []
            i = 0
            while i < len(parts):  # merge every occurrence, left to right
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    # --------------------------------------------------------------------------------- decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes the ids stand for (a slice of ids can end inside a UTF-8 character)."""
        chunks: List[bytes] = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id in self._special_by_id:  # written as-is, not in byte stand-ins
                chunks.append(self._special_by_id[token_id].encode("utf-8"))
                continue
            token = self._id_to_token.get(token_id)
            if token is None:
                raise InputError(f"token id {token_id} is not in the vocabulary "
                                 f"(ids go up to {self.vocab_size - 1})")
            chunks.append(bytes(UNICODE_TO_BYTE[ch] for ch in token))
        return b"".join(chunks)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Decode ids to text. Invalid UTF-8 (e.g. half an emoji) becomes U+FFFD by default."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def __repr__(self) -> str:
        return (f"ByteLevelBPE(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"special_tokens={list(self.special_tokens)})")


def _special_regex(tokens: Iterable[str]) -> "regex.Pattern":
    """A regex matching any of ``tokens`` verbatim, longest first, with one capture group."""
    alternatives = "|".join(regex.escape(t) for t in sorted(tokens, key=len, reverse=True))
    return regex.compile(f"({alternatives})")
