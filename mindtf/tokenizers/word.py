"""Word-level tokenization for translation (Multi30k): a tokenize function, a :class:`Vocab`, and
:class:`WordTokenizer`, which puts the two together.

    >>> tokenize("Two young, White males are outside.")
    ['two', 'young', ',', 'white', 'males', 'are', 'outside', '.']
    >>> detokenize(['two', 'young', ',', 'white', 'males', 'are', 'outside', '.'])
    'two young, white males are outside.'
    >>> vocab = Vocab.build([["a", "dog", "runs"], ["a", "cat"]])
    >>> vocab.itos
    ['<unk>', '<pad>', '<bos>', '<eos>', 'a', 'cat', 'dog', 'runs']
    >>> vocab.lookup(["a", "zebra"])
    [4, 0]

Special tokens come first, so their ids (``<unk>`` 0, ``<pad>`` 1, ``<bos>`` 2, ``<eos>`` 3 by
default) do not depend on the corpus. The other words follow by frequency (most frequent first),
ties in alphabetical order, so the same corpus always gives the same ids.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

from mindtf.errors import InputError

__all__ = ["tokenize", "detokenize", "Vocab", "WordTokenizer", "SPECIALS"]

PathLike = Union[str, "os.PathLike[str]"]
#: default special tokens: unknown word, padding, begin and end of sentence
SPECIALS = ("<unk>", "<pad>", "<bos>", "<eos>")

# a word (letters/digits, with inner apostrophes or hyphens: "man's", "t-shirt"), or one symbol
_TOKEN_RE = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
# punctuation that hugs the word before it ("dog ." -> "dog.") or after it ("( dog" -> "(dog")
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def tokenize(text: str, lowercase: bool = True) -> List[str]:
    """Split a sentence into words and punctuation marks (works for English and German)."""
    if lowercase:
        text = text.lower()
    return _TOKEN_RE.findall(text)


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens with spaces and re-attach punctuation: close enough to the original text for
    BLEU on detokenised output (sacreBLEU re-tokenises it anyway)."""
    text = " ".join(tokens)
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    return _NO_SPACE_AFTER.sub(r"\1", text)


class Vocab:
    """A token <-> id table.

    Args:
        itos: the tokens in id order (``itos[i]`` has id ``i``); no duplicates.
        unk: the token unknown words map to (``None``: unknown words raise ``InputError``).
    """

    def __init__(self, itos: Sequence[str], unk: Optional[str] = "<unk>") -> None:
        self.itos: List[str] = list(itos)
        self.stoi: Dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise InputError("the vocabulary has duplicate tokens")
        self.unk = unk if unk in self.stoi else None

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], min_freq: int = 1,
              specials: Sequence[str] = SPECIALS, max_size: Optional[int] = None) -> "Vocab":
        """Count tokens and keep those seen at least ``min_freq`` times.

        ``max_size`` caps the total size, specials included (most frequent words are kept).
        """
        counts: Counter = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for s in specials:
            counts.pop(s, None)
        words = sorted((t for t, n in counts.items() if n >= min_freq),
                       key=lambda t: (-counts[t], t))
        if max_size is not None:
            if max_size < len(specials):
                raise InputError(f"max_size={max_size} cannot hold the {len(specials)} specials")
            words = words[: max_size - len(specials)]
        return cls(list(specials) + words, unk="<unk>" if "<unk>" in specials else None)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.lookup(token)

    def lookup(self, tokens: Union[str, Iterable[str]]) -> Union[int, List[int]]:
        """Token -> id, or a list of tokens -> list of ids. Unknown tokens get :attr:`unk_id`."""
        if isinstance(tokens, str):
            return self._lookup_one(tokens)
        return [self._lookup_one(t) for t in tokens]

    def _lookup_one(self, token: str) -> int:
        i = self.stoi.get(token)
        if i is not None:
            return i
        if self.unk is None:
            raise InputError(f"token {token!r} is not in the vocabulary and it has no <unk>")
        return self.stoi[self.unk]

    def lookup_tokens(self, ids: Iterable[int]) -> List[str]:
        """Ids -> tokens."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise InputError(f"token id {i} is out of range [0, {len(self.itos)})")
            out.append(self.itos[i])
        return out

    def _special(self, token: str) -> int:
        if token not in self.stoi:
            raise InputError(f"this vocabulary has no {token} token")
        return self.stoi[token]

    @property
    def unk_id(self) -> int:
        return self._special("<unk>")

    @property
    def pad_id(self) -> int:
        return self._special("<pad>")

    @property
    def bos_id(self) -> int:
        return self._special("<bos>")

    @property
    def eos_id(self) -> int:
        return self._special("<eos>")

    def to_dict(self) -> dict:
        return {"type": "vocab", "itos": self.itos, "unk": self.unk}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocab":
        return cls(data["itos"], unk=data.get("unk"))

    def save(self, path: PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: PathLike) -> "Vocab":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.unk == other.unk

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.itos[:6]})"


class WordTokenizer:
    """:func:`tokenize` + a :class:`Vocab`: sentence -> ids and ids -> sentence.

        >>> tok = WordTokenizer.build(["A dog runs.", "A cat sleeps."])
        >>> tok.encode("a dog sleeps!", add_bos=True, add_eos=True)
        [2, 5, 7, 9, 0, 3]
        >>> tok.decode([2, 5, 7, 9, 0, 3])
        'a dog sleeps <unk>'
    """

    def __init__(self, vocab: Vocab, lowercase: bool = True) -> None:
        self.vocab = vocab
        self.lowercase = lowercase

    @classmethod
    def build(cls, texts: Iterable[str], lowercase: bool = True, min_freq: int = 1,
              specials: Sequence[str] = SPECIALS, max_size: Optional[int] = None
              ) -> "WordTokenizer":
        """Build the vocabulary from raw sentences."""
        vocab = Vocab.build((tokenize(t, lowercase) for t in texts), min_freq=min_freq,
                            specials=specials, max_size=max_size)
        return cls(vocab, lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def tokenize(self, text: str) -> List[str]:
        return tokenize(text, self.lowercase)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> List[int]:
        ids = self.vocab.lookup(self.tokenize(text))
        assert isinstance(ids, list)
        if add_bos:
            ids.insert(0, self.vocab.bos_id)
        if add_eos:
            ids.append(self.vocab.eos_id)
        return ids

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Ids -> sentence. Stops at ``<eos>``; drops ``<bos>``/``<pad>`` (``<unk>`` is kept)."""
        tokens = []
        hidden = {"<bos>", "<pad>", "<eos>"} if skip_special else set()
        for token in self.vocab.lookup_tokens(ids):
            if skip_special and token == "<eos>":
                break
            if token not in hidden:
                tokens.append(token)
        return detokenize(tokens)

    def save(self, path: PathLike) -> None:
        data = {"type": "word", "lowercase": self.lowercase, "vocab": self.vocab.to_dict()}
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: PathLike) -> "WordTokenizer":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("type") != "word":
            raise InputError(f"{path} is not a WordTokenizer file (type={data.get('type')!r})")
        return cls(Vocab.from_dict(data["vocab"]), lowercase=data["lowercase"])

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"
