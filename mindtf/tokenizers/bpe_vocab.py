"""A joint byte-level BPE vocabulary for translation: one
:class:`~mindtf.tokenizers.bpe.ByteLevelBPE` for source and target, with ``<pad> <bos> <eos>``
and the :class:`~mindtf.tokenizers.word.Vocab` interface the seq2seq decoder reads (``lookup``,
``lookup_tokens``, ``pad_id``, ...).

Why not words? A word vocabulary built on Multi30k's training split maps every word it did not
keep to ``<unk>``, and a model trained on it writes ``<unk>`` into its translations ("a <unk> dog
runs"). Byte-level BPE has all 256 bytes in its base alphabet, so any text is spelt with known
tokens: there is no ``<unk>`` at all, and decoding gives back the exact text::

    text ----GPT-2 regex----> pre-tokens "Zwei", " Männer", "." (a leading space stays attached)
         ----BPE merges-----> tokens "Zwei", "ĠMÃ¤nner", "." ---> ids      (encode / tokenize)
    ids  ----> tokens ----> bytes ----> UTF-8 text, exactly the input     (decode / detokenize)

One vocabulary serves both languages (it is trained on the German and the English side of the
training split together), so a Transformer can share its embedding tables
(``share_embeddings=True``, ``tie_output=True``).

    >>> v = BPEVocab.train(["Ein Hund läuft.", "A dog runs."] * 5, vocab_size=270)
    >>> v.decode(v.encode("Ein Hund läuft."))
    'Ein Hund läuft.'
    >>> v.pad_id, v.bos_id, v.eos_id, v.unk
    (267, 268, 269, None)

The ids: 0..255 are the bytes, then one id per merge, then ``<pad> <bos> <eos>``. The files are
GPT-2's ``vocab.json`` + ``merges.txt`` (:meth:`save`, :meth:`load`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

from mindtf.errors import InputError
from mindtf.tokenizers.bpe import ByteLevelBPE
from mindtf.tokenizers.bytes_unicode import symbols_to_bytes

__all__ = ["BPEVocab", "BPE_SPECIALS", "BPE_FILES"]

PathLike = Union[str, "os.PathLike[str]"]
#: the special tokens of a translation vocabulary (no <unk>: byte-level BPE never needs one)
BPE_SPECIALS = ("<pad>", "<bos>", "<eos>")
#: the files :meth:`BPEVocab.save` writes into a folder
BPE_FILES = ("vocab.json", "merges.txt")


class BPEVocab:
    """A :class:`ByteLevelBPE` with ``<pad> <bos> <eos>``, seen as a vocabulary of token strings.

    Args:
        bpe: a trained tokenizer whose special tokens include :data:`BPE_SPECIALS`.
        lowercase: lowercase every text before encoding it (the decoded text is then lowercase).
    """

    #: unknown tokens: none (any text is spelt with byte tokens)
    unk = None

    def __init__(self, bpe: ByteLevelBPE, lowercase: bool = False) -> None:
        missing = [t for t in BPE_SPECIALS if t not in bpe.special_tokens]
        if missing:
            raise InputError(f"the BPE tokenizer has no {missing}: train it with "
                             "BPEVocab.train, which adds them.")
        self.bpe, self.lowercase = bpe, bool(lowercase)
        self.pad_id, self.bos_id, self.eos_id = (bpe.special_tokens[t] for t in BPE_SPECIALS)
        specials = set(bpe.special_tokens.values())
        # id -> its bytes, once (decoding is then one join); special tokens decode to nothing
        self._bytes: Dict[int, bytes] = {i: b"" if i in specials else symbols_to_bytes(t)
                                         for t, i in bpe.vocab.items()}

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, lowercase: bool = False
              ) -> "BPEVocab":
        """Learn ``vocab_size`` tokens (256 bytes + merges + 3 specials) from ``texts`` (the
        training sentences of both languages). Deterministic: no randomness, ties between equally
        frequent pairs go to the smaller pair in string order."""
        if lowercase:
            texts = (t.lower() for t in texts)
        return cls(ByteLevelBPE.train(texts, vocab_size, special_tokens=BPE_SPECIALS), lowercase)

    # ------------------------------------------------------------------ text <-> ids
    def encode(self, text: str) -> List[int]:
        """Text -> ids (``<bos>``/``<eos>`` are not added; special tokens written in the text are
        encoded as ordinary text)."""
        return self.bpe.encode(text.lower() if self.lowercase else text)

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Ids -> text: stops at ``<eos>`` and drops ``<bos>``/``<pad>`` (with ``skip_special``),
        bytes that do not form valid UTF-8 become U+FFFD."""
        out: List[bytes] = []
        for i in ids:
            i = int(i)
            if skip_special and i == self.eos_id:
                break
            piece = self._bytes.get(i)
            if piece is None:
                raise InputError(f"token id {i} is out of range [0, {len(self)}).")
            out.append(piece)
        return b"".join(out).decode("utf-8", errors="replace")

    def tokenize(self, text: str) -> List[str]:
        """Text -> token strings (GPT-2's byte stand-ins: ``" dog"`` is ``"Ġdog"``)."""
        return self.lookup_tokens(self.encode(text))

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Token strings -> text, the exact inverse of :meth:`tokenize` (specials dropped)."""
        return self.decode(self.lookup(list(tokens)), skip_special=False)

    # ------------------------------------------------------------------ the Vocab interface
    @property
    def stoi(self) -> Dict[str, int]:
        return self.bpe.vocab

    def __len__(self) -> int:
        return self.bpe.vocab_size

    def __contains__(self, token: str) -> bool:
        return token in self.bpe.vocab

    def lookup(self, tokens: Union[str, Iterable[str]]) -> Union[int, List[int]]:
        """Token string -> id, or a list of them -> list of ids (an unknown token string is an
        error: there is no ``<unk>``)."""
        if isinstance(tokens, str):
            return self._lookup_one(tokens)
        return [self._lookup_one(t) for t in tokens]

    def _lookup_one(self, token: str) -> int:
        i = self.bpe.vocab.get(token)
        if i is None:
            raise InputError(f"{token!r} is not a token of this BPE vocabulary; encode text "
                             "with BPEVocab.encode or BPEVocab.tokenize.")
        return i

    def lookup_tokens(self, ids: Iterable[int]) -> List[str]:
        """Ids -> token strings."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self):
                raise InputError(f"token id {i} is out of range [0, {len(self)})")
            out.append(self.bpe.id_to_token(i))
        return out

    # ------------------------------------------------------------------ files
    def save(self, folder: PathLike) -> Tuple[Path, Path]:
        """Write GPT-2-format ``vocab.json`` + ``merges.txt`` into ``folder``."""
        return self.bpe.save(folder)

    @classmethod
    def load(cls, folder: PathLike, lowercase: bool = False) -> "BPEVocab":
        """Read what :meth:`save` wrote (``lowercase`` is the recipe's setting, saved apart)."""
        folder = Path(folder)
        return cls(ByteLevelBPE.from_files(folder / BPE_FILES[0], folder / BPE_FILES[1],
                                           special_tokens=BPE_SPECIALS), lowercase)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, BPEVocab) and self.lowercase == other.lowercase
                and self.bpe.vocab == other.bpe.vocab and self.bpe.merges == other.bpe.merges)

    def __repr__(self) -> str:
        return (f"BPEVocab(size={len(self)}, merges={len(self.bpe.merges)}, "
                f"lowercase={self.lowercase})")
