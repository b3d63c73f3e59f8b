"""GPT: a decoder-only Transformer language model (GPT-1 and GPT-2 layouts).

Parameter names match Hugging Face GPT-2 (``wte``, ``wpe``, ``h.{i}.ln_1``, ``h.{i}.attn.c_attn``,
``h.{i}.attn.c_proj``, ``h.{i}.ln_2``, ``h.{i}.mlp.c_fc``, ``h.{i}.mlp.c_proj``, ``ln_f``), so GPT-2
checkpoints load by name with :meth:`GPT.from_pretrained`. The projections are stored ``(out, in)``
like ``torch.nn.Linear`` (the faster MatMul layout in MindSpore); GPT-2's "Conv1D" matrices are
``(in, out)`` and are transposed when loaded and saved (:mod:`mindtf.weights.gpt2`).

::

    ids (B, T) -> wte + wpe -> [block] x n_layer -> ln_f -> logits (B, T, V) (head tied to wte)
    GPT-2 block (pre-norm):  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    GPT-1 block (post-norm): x = ln_1(x + attn(x));  x = ln_2(x + mlp(x))   (no ln_f)

One forward pass, :meth:`GPT.forward`, serves training (no cache), op-by-op decoding (a growing
:class:`~mindtf.nn.kv_cache.KVCache`) and compiled decoding (fixed-size caches,
:mod:`mindtf.models.gpt_decoder`): only the cache and the mask differ.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from mindtf.kernels import fused_attention_op, gelu_tanh_op, masked_softmax_op
from mindtf.models.base import Pretrained, as_token_ids, check_token_ids
from mindtf.models.gpt_config import GPTConfig
from mindtf.nn.attention import merge_heads, scaled_dot_product_attention, split_heads
from mindtf.nn.kv_cache import KVCache
from mindtf.nn.layers import Embedding, Linear, activate, make_norm
from mindtf.nn.positional import LearnedPositionalEmbedding, RotaryEmbedding
from mindtf.runtime import pynative
from mindtf.weights.gpt2 import from_gpt2_names, to_gpt2_names

__all__ = ["GPT", "GPTConfig", "Block", "CausalSelfAttention", "MLP"]


class CausalSelfAttention(nn.Cell):
    """Masked multi-head self-attention with a fused ``c_attn`` (q|k|v) projection.

    ``construct(x (B, T, C), mask, cache=None, positions=0, guard=False, return_weights=False)``:
    ``mask`` (True = may attend) is ``(T, P+T)`` or ``(B, 1, T, P+T)``; ``cache`` is one layer's
    cache (anything with ``append(k, v, positions) -> (keys, values)``); ``positions`` (an int
    offset or position ids) place RoPE.
    """

    def __init__(self, c: GPTConfig, rope: Optional[RotaryEmbedding]):
        super().__init__()
        self.n_head = c.n_head
        self.c_attn = Linear(c.n_embd, 3 * c.n_embd, bias=c.bias, std=0.02)
        self.c_proj = Linear(c.n_embd, c.n_embd, bias=c.bias,
                             std=0.02 / math.sqrt(2 * c.n_layer))  # GPT-2's residual scaling
        self.attn_dropout_p = float(c.dropout)
        self.resid_dropout = nn.Dropout(p=c.dropout)
        self.rope = rope
        self.softmax_kernel = masked_softmax_op()  # mindtf's CPU kernel, or None
        self.fused_kernel = fused_attention_op()  # split..merge in one CPU kernel, or None

    def construct(self, x: Tensor, mask: Tensor, cache=None, positions=0, guard: bool = False,
                  return_weights: bool = False):
        b, t, c = x.shape
        qkv = self.c_attn(x)  # (B, T, 3C)
        if self._fused(qkv, mask, cache, return_weights):  # the training case on a CPU
            heads = qkv.reshape(b, t, 3, self.n_head, c // self.n_head)  # (B, T, 3, H, d)
            y, _ = self.fused_kernel(heads, mask)  # (B, T, H, d)
            return self.resid_dropout(self.c_proj(y.reshape(b, t, c)))
        q, k, v = ops.split(qkv, c, axis=2)  # 3 x (B, T, C)
        q, k, v = (split_heads(q, self.n_head), split_heads(k, self.n_head),
                   split_heads(v, self.n_head))
        if self.rope is not None:  # (B, H, T, d)
            q, k = self.rope(q, positions), self.rope(k, positions)
        if cache is not None:
            k, v = cache.append(k, v, positions)  # (B, H, P+T, d), or (B, H, L, d) when fixed
        res = scaled_dot_product_attention(q, k, v, mask, self.attn_dropout_p, return_weights,
                                           self.training, guard, self.softmax_kernel)
        out, w = (res[0], res[1]) if return_weights else (res, None)
        y = self.resid_dropout(self.c_proj(merge_heads(out)))  # (B, T, C)
        return (y, w) if return_weights else y


    def _fused(self, qkv: Tensor, mask: Tensor, cache, return_weights: bool) -> bool:
        """Whether the fused kernel applies: float32 projections (no fp16 compute), a (T, T)
        mask, no RoPE, no cache, no weights asked for and no attention dropout (all known when
        the graph is compiled)."""
        t = qkv.shape[1]
        return (self.fused_kernel is not None and self.rope is None and cache is None
                and not return_weights and (self.attn_dropout_p == 0.0 or not self.training)
                and qkv.dtype == ms.float32 and mask.ndim == 2 and mask.shape[0] == t
                and mask.shape[1] == t)


class MLP(nn.Cell):
    """``c_proj(act(c_fc(x)))``; SwiGLU adds a gate projection ``c_gate``."""

    def __init__(self, c: GPTConfig, proj_std: float):
        super().__init__()
        hidden = c.n_inner or 4 * c.n_embd
        self.activation = c.activation
        self.c_fc = Linear(c.n_embd, hidden, bias=c.bias, std=0.02)
        self.c_gate = (Linear(c.n_embd, hidden, bias=c.bias, std=0.02)
                       if c.activation == "swiglu" else None)
        self.c_proj = Linear(hidden, c.n_embd, bias=c.bias, std=proj_std)
        self.dropout = nn.Dropout(p=c.dropout)
        self.gelu_kernel = gelu_tanh_op() if c.activation == "gelu" else None  # CPU, or None

    def construct(self, x: Tensor) -> Tensor:  # (B, T, C) -> (B, T, C)
        h = activate(self.activation, self.c_fc(x), self.c_gate, x, self.gelu_kernel)  # (B,T,4C)
        return self.dropout(self.c_proj(h))


class Block(nn.Cell):
    """One Transformer block (pre-norm for GPT-2, post-norm for GPT-1)."""

    def __init__(self, c: GPTConfig, rope: Optional[RotaryEmbedding]):
        super().__init__()
        self.pre_norm = c.layout == "gpt2"
        self.ln_1 = make_norm(c.norm, c.n_embd, c.layer_norm_epsilon)
        self.attn = CausalSelfAttention(c, rope)
        self.ln_2 = make_norm(c.norm, c.n_embd, c.layer_norm_epsilon)
        # GPT-2 init: residual projections scaled by 1/sqrt(2 * n_layer)
        self.mlp = MLP(c, proj_std=0.02 / math.sqrt(2 * c.n_layer))

    def construct(self, x, mask, cache=None, positions=0, guard=False, return_weights=False):
        if self.pre_norm:
            a = self.attn(self.ln_1(x), mask, cache, positions, guard, return_weights)
            a, w = (a[0], a[1]) if return_weights else (a, None)
            x = x + a
            x = x + self.mlp(self.ln_2(x))
        else:
            a = self.attn(x, mask, cache, positions, guard, return_weights)
            a, w = (a[0], a[1]) if return_weights else (a, None)
            x = self.ln_1(x + a)
            x = self.ln_2(x + self.mlp(x))
        return (x, w) if return_weights else x


class GPT(Pretrained, nn.Cell):
    """Decoder-only language model.

    ``construct(idx (B, T), cache=None, attention_mask=None, position_ids=None,
    return_attention=False, last_only=False) -> logits (B, T, vocab_size)``.

    * ``cache``: a :class:`~mindtf.nn.kv_cache.KVCache` from :meth:`new_cache`; pass only the new
      tokens and the model attends to the cached ones (incremental decoding, PyNative).
    * ``attention_mask``: ``(B, P+T)`` bool/int, 1 for real tokens and 0 for padding (batched
      generation with left-padded prompts).
    * ``return_attention``: also return a list of per-layer weights ``(B, H, T, P+T)``.
    * ``last_only``: return the logits of the last position only, ``(B, 1, V)`` (generation).
    """

    model_types = ("gpt2", "mindtf-gpt")
    config_class = GPTConfig
    state_hint = ("Check that config.json belongs to these weights (n_layer, n_embd, vocab_size, "
                  "tie_word_embeddings).")

    def __init__(self, config: GPTConfig):
        super().__init__()
        c = self.config = config
        # (L, L) lower-triangular constant, True = may attend
        self._causal = Tensor(np.tril(np.ones((c.block_size, c.block_size), dtype=bool)))
        rope = (RotaryEmbedding(c.n_embd // c.n_head, c.block_size, c.rope_base)
                if c.position == "rope" else None)
        self.wte = Embedding(c.vocab_size, c.n_embd, std=0.02)
        self.wpe = LearnedPositionalEmbedding(c.block_size, c.n_embd) if rope is None else None
        self.drop = nn.Dropout(p=c.dropout)
        self.h = nn.CellList([Block(c, rope) for _ in range(c.n_layer)])
        self.ln_f = (make_norm(c.norm, c.n_embd, c.layer_norm_epsilon) if c.layout == "gpt2"
                     else None)
        self.lm_head = None if c.tie_weights else Linear(c.n_embd, c.vocab_size, bias=False,
                                                         std=0.02)
        self._matmul_nt = ops.MatMul(transpose_b=True)

    @property
    def hidden_size(self) -> int:
        """The model width (the Noam schedule scales with it)."""
        return self.config.n_embd

    # ------------------------------------------------------------------ forward
    def construct(self, idx: Tensor, cache: Optional[KVCache] = None,
                  attention_mask: Optional[Tensor] = None, position_ids: Optional[Tensor] = None,
                  return_attention: bool = False, last_only: bool = False):
        b, t = idx.shape
        past = 0 if cache is None else cache.length
        if past == 0 and t == self.config.block_size:
            mask = self._causal  # (T, T): the common training case, no slicing op
        else:
            mask = self._causal[past:past + t, :past + t]  # (T, P+T)
        guard = False  # with a causal mask alone every position sees at least itself
        if attention_mask is not None:  # (B, P+T) -> (B, 1, 1, P+T)
            key_mask = attention_mask.astype(ms.bool_).reshape(b, 1, 1, -1)
            mask = ops.logical_and(mask, key_mask)  # (B, 1, T, P+T)
            guard = True
        positions = position_ids if position_ids is not None else past
        return self.forward(idx, mask, positions, cache, guard, return_attention, last_only)

    def forward(self, idx: Tensor, mask: Tensor, positions=0, cache=None, guard: bool = False,
                return_attention: bool = False, last_only: bool = False):
        """The network itself: ``idx (B, T)`` -> logits ``(B, T, V)`` (``(B, 1, V)`` with
        ``last_only``), given the attention ``mask`` (True = may attend), the ``positions`` of
        the tokens (an int offset or ids ``(T,)``/``(B, T)``) and per-layer ``cache[i]``."""
        t = idx.shape[1]
        x = self.wte(idx)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(t, positions)  # (T, C) or (B, T, C)
        x = self.drop(x)
        maps = []
        for i, block in enumerate(self.h):
            lc = cache[i] if cache is not None else None
            if return_attention:
                x, w = block(x, mask, lc, positions, guard, True)
                maps.append(w)
            else:
                x = block(x, mask, lc, positions, guard)
        if last_only:  # generation needs the next-token logits only: skip the head elsewhere
            x = x[:, -1:, :]  # (B, 1, C)
        if self.ln_f is not None:
            x = self.ln_f(x)
        logits = self.logits(x)  # (B, T, V), or (B, 1, V) with last_only
        return (logits, maps) if return_attention else logits

    def logits(self, h: Tensor) -> Tensor:
        """Hidden states ``(B, T, C)`` -> logits ``(B, T, V)`` (the tied or separate head)."""
        if self.lm_head is None:
            b, t, c = h.shape
            y = self._matmul_nt(h.reshape(b * t, c), self.wte.weight)  # (B*T, V), no transpose op
            return y.reshape(b, t, -1)
        return self.lm_head(h)

    def new_cache(self) -> KVCache:
        """An empty key/value cache for :meth:`construct` (op-by-op decoding)."""
        return KVCache(self.config.n_layer)

    def check_input(self, idx, past: int = 0) -> None:
        """Raise :class:`~mindtf.errors.InputError` for ids that would fail deep inside MindSpore
        (``past``: positions already in the cache)."""
        check_token_ids(idx, self.config.vocab_size, "GPT input", max_len=self.config.block_size,
                        past=past, len_field="block_size")

    def __call__(self, *args, **kwargs):
        # Host-side checks on user input. A graph that *contains* this model (a compiled
        # training step) does not call __call__; it checks its numpy batches instead.
        idx = args[0] if args else kwargs.get("idx")
        cache = args[1] if len(args) > 1 else kwargs.get("cache")
        if isinstance(idx, (np.ndarray, list, tuple)):  # numpy or list ids: an int32 Tensor
            idx = Tensor(as_token_ids(idx))
            args, kwargs = ((idx, *args[1:]), kwargs) if args else (args, {**kwargs, "idx": idx})
        if isinstance(idx, Tensor):
            self.check_input(idx, 0 if cache is None else cache.length)
        if cache is not None:  # the Python-side cache only runs op by op
            with pynative():
                return super().__call__(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    # ------------------------------------------------------------------ files
    def config_to_json(self) -> dict:
        return self.config.to_hf()

    @classmethod
    def config_from_json(cls, d: dict) -> GPTConfig:
        return GPTConfig.from_hf(d)

    def import_state(self, state: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Hugging Face GPT-2 names and layouts (or mindtf's) -> mindtf's."""
        return from_gpt2_names(state, self.config.tie_weights)

    def export_state(self) -> Dict[str, np.ndarray]:
        """GPT-2's names and ``(in, out)`` Conv1D layout, as ``GPT2LMHeadModel`` reads them."""
        return to_gpt2_names(self.state_dict())

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        n = sum(int(np.prod(p.shape)) for p in self.trainable_params())
        if exclude_embeddings and self.wpe is not None:
            n -= int(np.prod(self.wpe.weight.shape))
        return n
