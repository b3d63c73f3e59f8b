"""Attention (注意力): scaled dot-product, additive (Bahdanau) and multi-head attention.

Shapes: ``B`` batch, ``H`` heads, ``T_q`` query positions, ``T_k`` key positions, ``d`` per-head
width, ``D = H * d`` model width. Masks are boolean, **True = may attend** (see
:mod:`mindtf.nn.masks`).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

from mindspore import Tensor, nn, ops
from mindspore.common import dtype as mstype
from mindspore.ops import constexpr

from mindtf.errors import ConfigError, InputError
from mindtf.kernels import masked_softmax_op
from mindtf.nn.kv_cache import LayerKV
from mindtf.nn.layers import Linear, dtype_min
from mindtf.nn.masks import check_mask

__all__ = ["scaled_dot_product_attention", "AdditiveAttention", "MultiHeadAttention",
           "split_heads", "merge_heads"]


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, return_weights: bool = False,
                                 training: bool = True, guard_empty_rows: bool = True,
                                 softmax_kernel=None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """``softmax(q k^T / sqrt(d) masked) v``.

    Args:
        q: queries ``(..., T_q, d)``.
        k: keys ``(..., T_k, d)``.
        v: values ``(..., T_k, d_v)``.
        mask: optional bool mask broadcastable to ``(..., T_q, T_k)``, True = may attend.
            A query whose every key is masked gets all-zero weights and a zero output (never NaN).
        dropout_p: dropout on the attention weights (only when ``training``).
        return_weights: also return the weights ``(..., T_q, T_k)`` (after dropout).
        training: whether dropout is active.
        guard_empty_rows: zero the rows whose every key is masked (the default). Callers whose
            masks always leave a key visible (a causal mask: each position sees itself) may turn
            it off to save three ops per call.
        softmax_kernel: :func:`mindtf.kernels.masked_softmax_op` (taken when the layer is built;
            ``None``: built-in ops). Used for float32 scores with a ``(T_q, T_k)`` mask (causal
            masks); other masks take the built-in path. Same weights to float32 rounding.

    Returns:
        ``out (..., T_q, d_v)``, or ``(out, weights)`` with ``return_weights=True``.
    """
    d = q.shape[-1]
    _check_widths(d, k.shape[-1])
    scores = _qk(q * (1.0 / math.sqrt(d)), k)  # (..., T_q, T_k)
    if mask is not None:
        check_mask(mask, scores.shape, "scaled_dot_product_attention")
        if (softmax_kernel is not None and scores.dtype == mstype.float32
                and mask.shape == scores.shape[-2:]):
            weights = softmax_kernel(scores, mask)  # one CPU kernel, masked keys get 0
        else:
            scores = ops.masked_fill(scores, ops.logical_not(mask), dtype_min(scores.dtype))
            weights = ops.softmax(scores, -1)
        if guard_empty_rows:
            # rows with no visible key would be a uniform average of padding: zero them instead
            has_key = ops.any(mask, -1, keep_dims=True).astype(weights.dtype)  # (..., T_q|1, 1)
            weights = weights * has_key
    else:
        weights = ops.softmax(scores, -1)
    if dropout_p > 0.0 and training:
        weights = ops.dropout(weights, p=dropout_p, training=True)
    out = ops.matmul(weights, v)  # (..., T_q, d_v)
    if return_weights:
        return out, weights
    return out


_bmm_nt = ops.BatchMatMul(transpose_b=True)


def _qk(q: Tensor, k: Tensor) -> Tensor:
    """``q @ k^T`` over the last two axes without materialising ``k^T`` (4-D: one kernel)."""
    if q.ndim == 4 and k.ndim == 4 and q.shape[:2] == k.shape[:2]:
        return _bmm_nt(q, k)
    return ops.matmul(q, k.swapaxes(-1, -2))


@constexpr
def _check_widths(dq: int, dk: int) -> bool:
    if dq != dk:
        raise InputError(f"queries have width {dq} but keys have width {dk}; they must match.")
    return True


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(B, T, H*d) -> (B, H, T, d)``."""
    b, t, dm = x.shape
    return x.reshape(b, t, n_heads, dm // n_heads).transpose(0, 2, 1, 3)


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, T, d) -> (B, T, H*d)``."""
    b, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * d)


class AdditiveAttention(nn.Cell):
    """Bahdanau (additive) attention: ``score(q, k) = v^T tanh(W_q q + W_k k)``.

    ``construct(query (B, T_q, d_q), keys (B, T_k, d_k), values (B, T_k, d_v), mask=None)``
    returns ``(context (B, T_q, d_v), weights (B, T_q, T_k))``. ``mask`` broadcasts to
    ``(B, T_q, T_k)``; a ``(B, 1, 1, T_k)`` padding mask is accepted too.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__()
        self.w_q = Linear(query_dim, hidden_dim, bias=False)
        self.w_k = Linear(key_dim, hidden_dim, bias=False)
        self.v = Linear(hidden_dim, 1, bias=False)

    def construct(self, query: Tensor, keys: Tensor, values: Tensor,
                  mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        # (B, T_q, 1, h) + (B, 1, T_k, h) -> (B, T_q, T_k, h)
        feats = ops.tanh(self.w_q(query).expand_dims(2) + self.w_k(keys).expand_dims(1))
        scores = self.v(feats).squeeze(-1)  # (B, T_q, T_k)
        if mask is not None:
            if mask.ndim == 4:  # (B, 1, 1, T_k) padding mask -> (B, 1, T_k)
                mask = mask.squeeze(1)
            check_mask(mask, scores.shape, "AdditiveAttention")
            scores = ops.masked_fill(scores, ops.logical_not(mask), dtype_min(scores.dtype))
            weights = ops.softmax(scores, -1)
            weights = weights * ops.any(mask, -1, keep_dims=True).astype(weights.dtype)
        else:
            weights = ops.softmax(scores, -1)
        return ops.matmul(weights, values), weights  # (B, T_q, d_v), (B, T_q, T_k)


class MultiHeadAttention(nn.Cell):
    """Multi-head attention (多头注意力) for self- and cross-attention.

    Args:
        d_model: model width ``D``; must be divisible by ``n_heads``.
        n_heads: number of heads ``H``.
        dropout: dropout on the attention weights.
        bias: whether the projections have biases.
        kdim, vdim: widths of the key/value inputs if different from ``d_model``.

    ``construct(query (B, T_q, D), key=None, value=None, mask=None, cache=None,
    return_weights=False, rope=None, pos_offset=0)``: ``key``/``value`` default to ``query``
    (self-attention). ``mask`` broadcasts to ``(B, H, T_q, T_k)``. With a :class:`LayerKV`
    ``cache``, self-attention appends this call's keys/values to it; a ``static`` cache (cross
    attention) projects ``key``/``value`` once and then reuses them. Returns ``(B, T_q, D)`` and,
    with ``return_weights``, the weights ``(B, H, T_q, T_k)``.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: Optional[int] = None, vdim: Optional[int] = None):
        super().__init__()
        if n_heads < 1 or d_model % n_heads:
            raise ConfigError(
                f"d_model={d_model} is not divisible by n_heads={n_heads}: each head gets "
                f"d_model / n_heads features. Pick n_heads among the divisors of {d_model} "
                f"(e.g. {', '.join(str(h) for h in _divisors(d_model)[:6])}) or change d_model.")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.dropout_p = float(dropout)
        self.q_proj = Linear(d_model, d_model, bias)
        self.k_proj = Linear(kdim or d_model, d_model, bias)
        self.v_proj = Linear(vdim or d_model, d_model, bias)
        self.out_proj = Linear(d_model, d_model, bias)
        self.softmax_kernel = masked_softmax_op()  # CPU kernel for (T_q, T_k) masks, or None

    def construct(self, query: Tensor, key: Optional[Tensor] = None, value: Optional[Tensor] = None,
                  mask: Optional[Tensor] = None, cache: Optional[LayerKV] = None,
                  return_weights: bool = False, rope=None, pos_offset=0):
        key = query if key is None else key
        value = key if value is None else value
        q = split_heads(self.q_proj(query), self.n_heads)  # (B, H, T_q, d)
        if cache is not None and cache.static and cache.k is not None:
            k, v = cache.k, cache.v  # cross-attention: memory already projected
        else:
            k = split_heads(self.k_proj(key), self.n_heads)  # (B, H, T_k, d)
            v = split_heads(self.v_proj(value), self.n_heads)
            if rope is not None:
                k = rope(k, pos_offset)
            if cache is not None:
                k, v = cache.append(k, v)
        if rope is not None:
            q = rope(q, pos_offset)
        res = scaled_dot_product_attention(q, k, v, mask, self.dropout_p, return_weights,
                                           self.training, True, self.softmax_kernel)
        if return_weights:
            out, weights = res
            return self.out_proj(merge_heads(out)), weights
        return self.out_proj(merge_heads(res))


def _divisors(n: int) -> list:
    return [h for h in range(1, n + 1) if n % h == 0]
