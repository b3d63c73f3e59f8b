"""A compiled decoding step for :class:`~mindtf.models.gpt.GPT` with fixed-size key/value caches.

The growing cache of :mod:`mindtf.nn.kv_cache` changes shape every step, so it can only run op by
op. Here each layer gets a :class:`~mindtf.nn.kv_cache.FixedKV`, a preallocated ``(L, B, H, d)``
buffer (``L = block_size``) written in place at the positions being decoded; the queries attend to
all ``L`` slots through a mask that hides the slots not written yet::

    ids (B, T), start ──> positions = start .. start+T-1           (T,)
                          mask[t, s] = slot s <= positions[t]       (T, L)
                          GPT.forward(ids, mask, positions, fixed caches, last_only=True)
                       ──> logits of the last position (B, V)

Shapes never change, so MindSpore compiles the step once (one graph for the prompt length, one for
single tokens) and each new token costs one graph launch. The network is the model's own
:meth:`~mindtf.models.gpt.GPT.forward`: same weights, same code, same numbers.
"""
from __future__ import annotations

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from mindtf.nn.kv_cache import FixedKV

__all__ = ["CompiledDecoder"]


class CompiledDecoder(nn.Cell):
    """``construct(ids (B, T), start () int32) -> logits (B, V)`` of the last position, writing
    the keys/values of positions ``start .. start+T-1`` into the caches."""

    def __init__(self, model, batch_size: int):
        super().__init__(auto_prefix=False)
        c = model.config
        self.model = model
        head_dim = c.n_embd // c.n_head
        self.caches = nn.CellList([FixedKV(c.block_size, batch_size, c.n_head, head_dim,
                                           name=f"decoder.{i}") for i in range(c.n_layer)])
        self.slots = Tensor(np.arange(c.block_size, dtype=np.int32))  # (L,)

    def update_parameters_name(self, prefix: str = "", recurse: bool = True) -> None:
        return None  # keep the model's parameter names

    def construct(self, ids: Tensor, start: Tensor) -> Tensor:
        t = ids.shape[1]
        positions = start + ops.arange(0, t, dtype=ms.int32)  # (T,)
        mask = self.slots.reshape(1, -1) <= positions.reshape(-1, 1)  # (T, L)
        logits = self.model.forward(ids, mask, positions, self.caches, last_only=True)
        return logits[:, 0, :]  # (B, V)
