"""Positional encodings (位置编码): sinusoidal (fixed), learned, and rotary (RoPE).

Attention by itself is blind to order: shuffle the tokens and every output is shuffled the same
way. Positional encodings break that symmetry.

* **Sinusoidal** (Vaswani et al., 2017): ``PE[p, 2i] = sin(p / 10000^(2i/d))``,
  ``PE[p, 2i+1] = cos(p / 10000^(2i/d))``, *added* to the token embeddings.
* **Learned**: a trainable table ``wpe[p]`` added to the embeddings (GPT-1/GPT-2).
* **Rotary** (Su et al., 2021): rotate each (query, key) pair of features by an angle
  proportional to the position, so that ``q·k`` depends only on the *relative* offset.

Positions are given as an integer offset or as a Tensor of position ids, which lets incremental
decoding (one new token at a time) ask for position ``t`` directly.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

from mindspore import Parameter, Tensor, nn, ops
from mindspore.ops import constexpr

from mindtf.errors import ConfigError, InputError

__all__ = ["sinusoidal_table", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding",
           "RotaryEmbedding"]


def sinusoidal_table(max_len: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """The ``(max_len, dim)`` sinusoidal table of "Attention Is All You Need" (float32)."""
    if dim % 2:
        raise ConfigError(f"sinusoidal encodings need an even dimension, got {dim}.")
    pos = np.arange(max_len, dtype=np.float64)[:, None]  # (L, 1)
    freq = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)  # (dim/2,)
    table = np.zeros((max_len, dim), dtype=np.float64)
    table[:, 0::2] = np.sin(pos * freq)
    table[:, 1::2] = np.cos(pos * freq)
    return table.astype(np.float32)


@constexpr
def _check_fits(t: int, offset: int, max_len: int, what: str) -> bool:
    # constexpr: evaluated in Python, also while a graph is compiled
    if offset + t > max_len:
        raise InputError(
            f"{what}: positions {offset}..{offset + t - 1} do not fit the position table of "
            f"length {max_len}. Use sequences of at most {max_len} tokens, or build the model "
            f"with a larger max length (block_size / max_len).")
    return True


def _positions(t: int, offset: Union[int, Tensor], max_len: int, what: str) -> Tensor:
    if isinstance(offset, Tensor):  # explicit position ids, shape (T,) or (B, T)
        return offset
    _check_fits(t, offset, max_len, what)
    return ops.arange(offset, offset + t)


class SinusoidalPositionalEncoding(nn.Cell):
    """Adds the fixed sinusoidal table to ``x`` (then dropout).

    ``construct(x (B, T, D), offset=0) -> (B, T, D)``; ``offset`` may be an int or a Tensor of
    position ids of shape ``(T,)`` or ``(B, T)``.
    """

    def __init__(self, dim: int, max_len: int = 5000, dropout: float = 0.0):
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.table = Tensor(sinusoidal_table(max_len, dim))  # (L, D), a constant, not trained
        self.dropout = nn.Dropout(p=dropout)

    def construct(self, x: Tensor, offset: Union[int, Tensor] = 0) -> Tensor:
        pos = _positions(x.shape[-2], offset, self.max_len, "SinusoidalPositionalEncoding")
        return self.dropout(x + ops.gather(self.table, pos, 0).astype(x.dtype))


class LearnedPositionalEmbedding(nn.Cell):
    """A trainable ``(max_len, dim)`` table; ``construct(t, offset=0)`` returns rows
    ``offset .. offset+t-1`` as ``(t, dim)`` (or ``(B, t, dim)`` for ``(B, t)`` position ids)."""

    def __init__(self, max_len: int, dim: int, std: float = 0.02):
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.weight = Parameter(Tensor(np.random.normal(0, std, (max_len, dim)).astype(np.float32)),
                                name="weight")

    def construct(self, t: int, offset: Union[int, Tensor] = 0) -> Tensor:
        pos = _positions(t, offset, self.max_len, "LearnedPositionalEmbedding")
        return ops.gather(self.weight, pos, 0)


class RotaryEmbedding(nn.Cell):
    """Rotary position embedding (RoPE) applied to queries and keys.

    Uses the "rotate half" pairing (feature ``i`` with ``i + d/2``), as GPT-NeoX and LLaMA in
    Hugging Face. ``construct(x (B, H, T, d), offset=0) -> (B, H, T, d)``.
    """

    def __init__(self, head_dim: int, max_len: int = 2048, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ConfigError(f"RoPE needs an even head dimension, got {head_dim}.")
        self.head_dim, self.max_len = head_dim, max_len
        inv_freq = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)  # (d/2,)
        ang = np.arange(max_len, dtype=np.float64)[:, None] * inv_freq[None, :]  # (L, d/2)
        ang = np.concatenate([ang, ang], axis=-1)  # (L, d)
        self.cos = Tensor(np.cos(ang).astype(np.float32))
        self.sin = Tensor(np.sin(ang).astype(np.float32))

    @staticmethod
    def rotate_half(x: Tensor) -> Tensor:
        half = x.shape[-1] // 2
        return ops.concat((-x[..., half:], x[..., :half]), -1)

    def construct(self, x: Tensor, offset: Union[int, Tensor] = 0) -> Tensor:
        pos = _positions(x.shape[-2], offset, self.max_len, "RotaryEmbedding")
        cos = ops.gather(self.cos, pos, 0).astype(x.dtype)  # (T, d) or (B, T, d)
        sin = ops.gather(self.sin, pos, 0).astype(x.dtype)
        if cos.ndim == 3:  # per-batch positions: (B, T, d) -> (B, 1, T, d)
            cos, sin = cos.expand_dims(1), sin.expand_dims(1)
        return x * cos + self.rotate_half(x) * sin


def positional_table(kind: str) -> Optional[str]:  # small helper for configs
    """Validate a positional-encoding kind name (``learned``, ``sinusoidal``, ``rope``)."""
    if kind not in ("learned", "sinusoidal", "rope"):
        raise ConfigError(f"positional encoding {kind!r}: choose 'learned', 'sinusoidal' "
                          "or 'rope'.")
    return kind
