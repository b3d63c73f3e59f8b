"""Dicts of numpy arrays <-> a MindSpore cell's parameters: the one strict state loader.

Every model and checkpoint moves its weights through these two functions::

    {name: np.ndarray} --copy_into(cell, state)--> cell.get_parameters()   (by name, checked)
    {name: np.ndarray} <--state_of(cell)---------- cell.get_parameters()

Names are the parameters' own (``p.name``, e.g. ``h.0.attn.c_attn.weight``); translating another
library's names (:mod:`mindtf.weights.gpt2`) happens before :func:`copy_into`. With ``strict``
(the default) a state that does not match the cell raises :class:`~mindtf.errors.CheckpointError`
naming the missing, unexpected and mis-shaped keys, and nothing is copied. MindSpore is imported
only when one of these functions is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable, Mapping

import numpy as np

from mindtf.errors import CheckpointError

if TYPE_CHECKING:  # pragma: no cover
    from mindspore import nn

__all__ = ["copy_into", "state_of"]


def _short(items: Iterable[str], n: int = 12) -> str:
    """The first ``n`` items, comma-separated, then how many more there are."""
    items = list(items)
    more = f" ... and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def copy_into(
    cell: "nn.Cell", state: Mapping[str, np.ndarray], *, strict: bool = True, hint: str = ""
) -> None:
    """Copy ``state`` (name -> array) into ``cell``'s parameters, by name.

    Each array is cast to its parameter's dtype. With ``strict=False`` the parameters whose name
    and shape match are copied and the rest is left as it is.

    Args:
        cell: any ``mindspore.nn.Cell``; its ``get_parameters()`` names are the keys.
        state: name -> numpy array (e.g. :func:`mindtf.weights.read_state`, after a name mapping).
        strict: raise on any missing, unexpected or mis-shaped key, before copying anything.
        hint: a sentence appended to the error, saying what to check (e.g. the config file).

    Raises:
        CheckpointError: (``strict``) listing the missing, unexpected and mis-shaped keys, each
            with its count and the first names.
    """
    from mindspore import Tensor

    params = {p.name: p for p in cell.get_parameters()}
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    misshaped = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(params[k].shape)}"
        for k in sorted(set(params) & set(state))
        if tuple(state[k].shape) != tuple(params[k].shape)
    ]
    if strict and (missing or unexpected or misshaped):
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_short(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped keys ({len(misshaped)}): {_short(misshaped, 6)}")
        what = type(cell).__name__
        raise CheckpointError(
            f"the checkpoint does not match this {what} configuration:\n  " + "\n  ".join(parts)
            + (f"\n{hint}" if hint else "")
        )
    for name, p in params.items():
        if name in state and tuple(state[name].shape) == tuple(p.shape):
            p.set_data(Tensor(np.ascontiguousarray(state[name]), dtype=p.dtype))


def state_of(cell: "nn.Cell") -> Dict[str, np.ndarray]:
    """``cell``'s parameters as name -> numpy array; floats other than float32 become float32.

    (float16/bfloat16/float8/float64 parameters are returned as float32, which numpy and every
    weight file reader understand; integer and bool parameters keep their dtype.)
    """
    from mindspore.common import dtype as mstype

    state: Dict[str, np.ndarray] = {}
    for p in cell.get_parameters():
        if p.dtype in mstype.float_type and p.dtype != mstype.float32:
            state[p.name] = p.astype(mstype.float32).asnumpy()  # also bf16/fp8, unknown to numpy
        else:
            state[p.name] = p.asnumpy()
    return state
