"""A compiled decoding step for :class:`~mindtf.gpt.GPT` with a fixed-size key/value cache.

The PyNative cache in :mod:`mindtf.attention` grows by concatenation, so every step has new
shapes and can only run op by op. Here the cache is a preallocated buffer per layer,
``(L, B, H, d)`` with ``L = block_size``, written in place with ``scatter_update`` at the
positions being decoded; the query attends to all ``L`` slots with a mask that hides the slots
not written yet. Shapes never change, so MindSpore compiles the step once (one graph for the
prompt, one for single tokens) and each new token costs one graph launch.

It reuses the model's own layers (same weights, same numbers as :meth:`GPT.construct`).
"""
from __future__ import annotations

import numpy as np

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from .attention import merge_heads, scaled_dot_product_attention

__all__ = ["CompiledDecoder"]


class CompiledDecoder(nn.Cell):
    """``construct(ids (B, T), start () int32) -> logits (B, V)`` of the last position, writing
    the keys/values of positions ``start .. start+T-1`` into the cache."""

    def __init__(self, model, batch_size: int):
        super().__init__(auto_prefix=False)
        c = model.config
        self.model = model
        self.n_head, self.head_dim = c.n_head, c.n_embd // c.n_head
        self.max_len = c.block_size
        shape = (c.block_size, batch_size, c.n_head, self.head_dim)  # (L, B, H, d)
        zeros = np.zeros(shape, np.float32)
        self.k_cache = ParameterTuple([Parameter(Tensor(zeros), name=f"decoder.k.{i}",
                                                 requires_grad=False) for i in range(c.n_layer)])
        self.v_cache = ParameterTuple([Parameter(Tensor(zeros), name=f"decoder.v.{i}",
                                                 requires_grad=False) for i in range(c.n_layer)])
        self.slots = Tensor(np.arange(c.block_size, dtype=np.int32))  # (L,)

    def update_parameters_name(self, prefix: str = "", recurse: bool = True) -> None:
        return None  # keep the model's parameter names

    def _attend(self, attn, x, i: int, positions, mask):
        b, t, c = x.shape
        q, k, v = ops.split(attn.c_attn(x), c, axis=2)  # 3 x (B, T, C)
        q = q.reshape(b, t, self.n_head, self.head_dim).transpose(0, 2, 1, 3)  # (B, H, T, d)
        k = k.reshape(b, t, self.n_head, self.head_dim)  # (B, T, H, d)
        v = v.reshape(b, t, self.n_head, self.head_dim)
        if attn.rope is not None:
            q = attn.rope(q, positions)
            k = attn.rope(k.transpose(0, 2, 1, 3), positions).transpose(0, 2, 1, 3)
        kc = ops.scatter_update(self.k_cache[i], positions, k.transpose(1, 0, 2, 3))  # (L,B,H,d)
        vc = ops.scatter_update(self.v_cache[i], positions, v.transpose(1, 0, 2, 3))
        keys = kc.transpose(1, 2, 0, 3)  # (B, H, L, d)
        values = vc.transpose(1, 2, 0, 3)
        out = scaled_dot_product_attention(q, keys, values, mask, 0.0, False, False, False)
        return attn.c_proj(merge_heads(out))  # (B, T, C)

    def construct(self, ids: Tensor, start: Tensor) -> Tensor:
        m = self.model
        b, t = ids.shape
        positions = start + ops.arange(0, t, dtype=ms.int32)  # (T,)
        mask = self.slots.reshape(1, -1) <= positions.reshape(-1, 1)  # (T, L)
        x = m.wte(ids)
        if m.wpe is not None:
            x = x + ops.gather(m.wpe.weight, positions, 0)
        for i, blk in enumerate(m.h):
            if blk.pre_norm:
                x = x + self._attend(blk.attn, blk.ln_1(x), i, positions, mask)
                x = x + blk.mlp(blk.ln_2(x))
            else:
                x = blk.ln_1(x + self._attend(blk.attn, x, i, positions, mask))
                x = blk.ln_2(x + blk.mlp(x))
        x = x[:, -1:, :]
        if m.ln_f is not None:
            x = m.ln_f(x)
        return m.logits(x)[:, 0, :]  # (B, V)
