"""Key/value caches (键值缓存) for incremental decoding.

When a decoder generates one token at a time, the keys and values of the earlier positions do not
change: computing them once and keeping them turns each step from ``O(T)`` positions of work into
one. Every attention layer asks its cache for the full keys/values with one call::

    k_all, v_all = cache.append(k_new, v_new, positions)  # (B, H, T_new, d) -> (B, H, T_all, d)

Two caches answer that call:

* :class:`LayerKV` (one per layer, grouped in :class:`KVCache`) grows by concatenation. Its shapes
  change every step, so it runs op by op in PyNative mode. It can also hold the projected memory of
  a cross-attention layer (``static=True``: computed once, reused every step), and re-order its
  batch rows for beam search.
* :class:`FixedKV` is a preallocated ``(L, B, H, d)`` buffer written in place at ``positions``
  (``L`` = the model's longest sequence). Its shapes never change, so a decoding step that uses it
  compiles once in GRAPH_MODE. The query must then attend only to the slots written so far: the
  caller's mask ``slots <= position`` hides the rest.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from mindspore import Parameter, Tensor, nn, ops

__all__ = ["LayerKV", "KVCache", "FixedKV"]


class LayerKV:
    """Cached keys and values of one attention layer, ``(B, H, T_past, d)`` each (PyNative)."""

    def __init__(self, static: bool = False):
        self.k: Optional[Tensor] = None
        self.v: Optional[Tensor] = None
        self.static = static

    @property
    def length(self) -> int:
        return 0 if self.k is None else int(self.k.shape[-2])

    def append(self, k: Tensor, v: Tensor, positions=None) -> Tuple[Tensor, Tensor]:
        """Add this step's keys/values ``(B, H, T, d)`` at the end (``positions`` is ignored:
        a growing cache always writes after its last position)."""
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = ops.concat((self.k, k), axis=-2)
            self.v = ops.concat((self.v, v), axis=-2)
        return self.k, self.v

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (beam search re-ordering)."""
        if self.k is not None:
            self.k = ops.gather(self.k, index, 0)
            self.v = ops.gather(self.v, index, 0)


class KVCache:
    """Per-layer key/value caches of a model: ``cache[i]`` is layer i's :class:`LayerKV`."""

    def __init__(self, n_layers: int, static: bool = False):
        self.layers: List[LayerKV] = [LayerKV(static) for _ in range(n_layers)]

    def __getitem__(self, i: int) -> LayerKV:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def length(self) -> int:
        """Number of positions already cached."""
        return self.layers[0].length if self.layers else 0

    def reorder(self, index: Tensor) -> None:
        for layer in self.layers:
            layer.reorder(index)


class FixedKV(nn.Cell):
    """A fixed-size cache for one layer: keys and values ``(L, B, H, d)``, written in place.

    ``append(k (B, H, T, d), v, positions (T,) int32) -> (keys (B, H, L, d), values)``: writes
    the new keys/values into slots ``positions`` (``scatter_update`` on the first axis, which is
    why the buffer keeps positions first) and returns every slot, written or not.
    """

    def __init__(self, max_len: int, batch_size: int, n_head: int, head_dim: int, name: str):
        super().__init__(auto_prefix=False)
        zeros = np.zeros((max_len, batch_size, n_head, head_dim), np.float32)  # (L, B, H, d)
        self.k = Parameter(Tensor(zeros), name=f"{name}.k", requires_grad=False)
        self.v = Parameter(Tensor(zeros), name=f"{name}.v", requires_grad=False)

    def append(self, k: Tensor, v: Tensor, positions: Tensor) -> Tuple[Tensor, Tensor]:
        kc = ops.scatter_update(self.k, positions, k.transpose(2, 0, 1, 3))  # (L, B, H, d)
        vc = ops.scatter_update(self.v, positions, v.transpose(2, 0, 1, 3))
        return kc.transpose(1, 2, 0, 3), vc.transpose(1, 2, 0, 3)  # (B, H, L, d)
