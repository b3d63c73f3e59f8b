"""Two GPT-2 conventions every byte-level BPE shares: the byte<->unicode map and the split regex.

**Why a byte<->unicode map?** Byte-level BPE works on the UTF-8 *bytes* of a text, so any string
(any language, any emoji) can be encoded with a 256-symbol base alphabet and nothing is ever
"unknown". But the vocabulary and merges are stored as text files (``vocab.json``,
``merges.txt``), where raw bytes such as ``b"\\x00"`` or a space would be invisible or would break
the one-merge-per-line format. GPT-2 therefore gives each byte a *printable* stand-in character:

* the 188 bytes that are already printable (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for
  themselves;
* the other 68 (control characters, space, ...) are shifted to ``chr(256)``, ``chr(257)``, ...

So a space (byte 32) becomes ``Ġ`` (``chr(288)``) and a newline (byte 10) becomes ``Ċ``::

    >>> BYTE_TO_UNICODE[ord(" ")], BYTE_TO_UNICODE[ord("\\n")]
    ('Ġ', 'Ċ')
    >>> bytes_to_symbols("hi there".encode())
    'hiĠthere'
    >>> symbols_to_bytes('hiĠthere').decode()
    'hi there'

**Why pre-tokenise?** Before BPE sees the text, GPT-2 splits it with :data:`GPT2_PATTERN` into
words, numbers, runs of punctuation and whitespace (a leading space stays attached to the word that
follows it). BPE merges never cross these boundaries, so ``"dog."`` and ``"dog!"`` share the token
``"dog"`` instead of learning one token per punctuation variant::

    >>> pretokenize("Hello world, it's 2024!")
    ['Hello', ' world', ',', ' it', "'s", ' 2024', '!']
"""
from __future__ import annotations

from typing import Dict, List

import regex  # the third-party `regex` module: the stdlib `re` has no \\p{L} (any letter)

__all__ = ["BYTE_TO_UNICODE", "UNICODE_TO_BYTE", "GPT2_PATTERN", "GPT2_REGEX",
           "bytes_to_symbols", "symbols_to_bytes", "pretokenize"]


def _byte_to_unicode() -> Dict[int, str]:
    """Build GPT-2's table: byte value (0..255) -> one printable character."""
    printable = (list(range(ord("!"), ord("~") + 1))
                 + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in table:  # not printable: give it the next free code point above 255
            table[b] = chr(256 + shift)
            shift += 1
    # GPT-2's vocabulary lists the 256 byte symbols printable-first; keep that order
    ordered = printable + [b for b in range(256) if b not in printable]
    return {b: table[b] for b in ordered}


#: byte value -> stand-in character, in GPT-2's order (``!`` first: it has id 0 in GPT-2's vocab)
BYTE_TO_UNICODE: Dict[int, str] = _byte_to_unicode()
#: the inverse map: stand-in character -> byte value
UNICODE_TO_BYTE: Dict[str, int] = {ch: b for b, ch in BYTE_TO_UNICODE.items()}

#: GPT-2's pre-tokenisation pattern: English contractions, letters, numbers, other symbols
#: (each optionally preceded by one space), then whitespace. ``\s+(?!\S)`` keeps the *last* space
#: of a run for the next word, so ``"a   b"`` splits as ``["a", "  ", " b"]``.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_REGEX = regex.compile(GPT2_PATTERN)


def bytes_to_symbols(data: bytes) -> str:
    """Map raw bytes to their printable stand-ins (one character per byte)."""
    return "".join(BYTE_TO_UNICODE[b] for b in data)


def symbols_to_bytes(symbols: str) -> bytes:
    """Inverse of :func:`bytes_to_symbols`."""
    return bytes(UNICODE_TO_BYTE[ch] for ch in symbols)


def pretokenize(text: str, pattern: "regex.Pattern" = GPT2_REGEX) -> List[str]:
    """Split ``text`` into pre-tokens; BPE merges happen only inside each one."""
    return pattern.findall(text)
