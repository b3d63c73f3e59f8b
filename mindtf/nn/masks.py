"""Attention masks (掩码).

Convention used everywhere in mindtf: a **boolean mask where True means "may attend"**. A mask is
broadcast against the attention scores, whose shape is ``(B, H, T_q, T_k)``:

* :func:`padding_mask` hides padded *keys*: shape ``(B, 1, 1, T_k)``;
* :func:`causal_mask` hides the future: shape ``(T_q, T_k)``, lower-triangular;
* combine them with ``&`` (``ops.logical_and``): ``padding_mask(src, pad) & causal_mask(T)``.

(PyTorch's ``nn.MultiheadAttention`` uses the opposite convention, True = *blocked*; flip with
``~mask`` when moving masks between the two.)
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

import mindspore as ms
from mindspore import Tensor, ops
from mindspore.ops import constexpr

from mindtf.errors import InputError, check_range

__all__ = ["padding_mask", "causal_mask", "check_mask", "combine_masks"]


def padding_mask(ids: Union[Tensor, np.ndarray], pad_id: int) -> Tensor:
    """Mask that lets every query attend to the non-padding keys of its own sequence.

    Args:
        ids: token ids, shape ``(B, T)``.
        pad_id: the padding id.

    Returns:
        bool Tensor of shape ``(B, 1, 1, T)``: True where ``ids != pad_id``.
    """
    if isinstance(ids, np.ndarray):
        ids = Tensor(ids)
    _check_ids_rank(ids.shape)
    return (ids != pad_id).reshape(ids.shape[0], 1, 1, ids.shape[1])  # (B, 1, 1, T)


def causal_mask(t_q: int, t_k: Optional[int] = None) -> Tensor:
    """Mask that stops position i from attending to positions after i.

    Args:
        t_q: number of query positions.
        t_k: number of key positions (default ``t_q``). When ``t_k > t_q`` the queries are the
            *last* ``t_q`` positions (incremental decoding with a cache of ``t_k - t_q`` keys).

    Returns:
        bool Tensor of shape ``(t_q, t_k)``; entry ``[i, j]`` is True when key ``j`` is at or
        before query ``i``.
    """
    t_k = t_q if t_k is None else t_k
    check_range("causal_mask t_q", t_q, 1, integer=True, error=InputError)
    check_range("causal_mask t_k", t_k, t_q, integer=True, error=InputError,
                fix="t_k counts the keys: the t_q queries plus the cached positions.")
    offset = t_k - t_q
    m = np.tril(np.ones((t_q, t_k), dtype=bool), k=offset)  # (t_q, t_k)
    return Tensor(m)


def combine_masks(*masks: Optional[Tensor]) -> Optional[Tensor]:
    """Logical AND of the masks that are not None (broadcasting), or None if all are None."""
    out = None
    for m in masks:
        if m is None:
            continue
        out = m if out is None else ops.logical_and(out, m)
    return out


@constexpr
def _check_ids_rank(shape) -> bool:
    if len(shape) != 2:
        raise InputError(f"padding_mask expects ids of shape (B, T), got shape {tuple(shape)}.")
    return True


def check_mask(mask: Tensor, scores_shape: Sequence[int], where: str = "attention") -> None:
    """Raise a clear :class:`~mindtf.errors.InputError` if ``mask`` cannot mask scores of
    shape ``scores_shape`` (``(..., T_q, T_k)``): it must be boolean and broadcastable.

    Shapes and dtypes are static, so the check runs while a graph is compiled too (``constexpr``
    evaluates it in Python at compile time).
    """
    _check_mask(mask.shape, mask.dtype, scores_shape, where)


@constexpr
def _check_mask(mask_shape, mask_dtype, scores_shape, where) -> bool:
    if mask_dtype != ms.bool_:
        raise InputError(
            f"{where}: the mask must be boolean (True = may attend), got dtype {mask_dtype}. "
            "Build it with mindtf.padding_mask / mindtf.causal_mask, or convert with "
            "`mask.astype(mindspore.bool_)` (and flip PyTorch-style masks with `~mask`).")
    ms_shape = tuple(mask_shape)
    sc = tuple(scores_shape)
    if len(ms_shape) > len(sc):
        raise InputError(f"{where}: mask of shape {ms_shape} has more dimensions than the "
                         f"attention scores {sc} (B, H, T_q, T_k).")
    for m_dim, s_dim in zip(reversed(ms_shape), reversed(sc)):
        if m_dim not in (1, s_dim):
            raise InputError(
                f"{where}: mask of shape {ms_shape} does not broadcast to the attention scores "
                f"of shape {sc} (B, H, T_q, T_k). Use (B, 1, 1, T_k) for padding, (T_q, T_k) "
                "for causal masks.")
    return True
