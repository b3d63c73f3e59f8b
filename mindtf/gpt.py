"""GPT: a decoder-only Transformer language model (GPT-1 and GPT-2 layouts).

Parameter names match Hugging Face GPT-2 (``wte``, ``wpe``, ``h.{i}.ln_1``, ``h.{i}.attn.c_attn``,
``h.{i}.attn.c_proj``, ``h.{i}.ln_2``, ``h.{i}.mlp.c_fc``, ``h.{i}.mlp.c_proj``, ``ln_f``), so GPT-2
checkpoints load by name with :meth:`GPT.from_pretrained` (see :mod:`mindtf.hf`). The projections
are stored ``(out, in)`` like ``torch.nn.Linear`` (the faster MatMul layout in MindSpore); GPT-2's
"Conv1D" matrices are ``(in, out)`` and are transposed when loaded and saved.

::

    ids (B, T) -> wte + wpe -> [block] x n_layer -> ln_f -> logits (B, T, V) (head tied to wte)
    GPT-2 block (pre-norm):  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    GPT-1 block (post-norm): x = ln_1(x + attn(x));  x = ln_2(x + mlp(x))   (no ln_f)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from .attention import KVCache, LayerKV, merge_heads, scaled_dot_product_attention, split_heads
from .errors import ConfigError, InputError
from .layers import Embedding, Linear, _gelu_tanh, make_norm
from .positional import LearnedPositionalEmbedding, RotaryEmbedding

__all__ = ["GPTConfig", "GPT", "Block", "CausalSelfAttention", "MLP"]


@dataclass
class GPTConfig:
    """Hyper-parameters of :class:`GPT`. Defaults: GPT-2 small (124M)."""

    vocab_size: int = 50257
    block_size: int = 1024  # longest sequence (size of the position table)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0  # embedding, attention and residual dropout
    bias: bool = True  # biases in projections and norms
    layout: str = "gpt2"  # "gpt2": pre-norm + final ln_f; "gpt1": post-norm, no ln_f
    position: str = "learned"  # "learned" (wpe) | "rope"
    activation: str = "gelu"  # "gelu" (tanh approximation) | "relu" | "swiglu"
    norm: str = "layernorm"  # "layernorm" | "rmsnorm"
    layer_norm_epsilon: float = 1e-5
    tie_weights: bool = True  # lm_head shares wte's matrix
    rope_base: float = 10000.0
    n_inner: Optional[int] = None  # MLP width (default 4 * n_embd)

    def __post_init__(self) -> None:
        if self.n_head < 1 or self.n_embd % self.n_head:
            raise ConfigError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}: "
                              "each head gets n_embd / n_head features. Choose n_head that "
                              "divides n_embd.")
        for name, allowed in (("layout", ("gpt2", "gpt1")), ("position", ("learned", "rope")),
                              ("activation", ("gelu", "relu", "swiglu")),
                              ("norm", ("layernorm", "rmsnorm"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r}: choose one of {allowed}.")
        if self.position == "rope" and (self.n_embd // self.n_head) % 2:
            raise ConfigError("RoPE needs an even head size (n_embd / n_head).")

    @classmethod
    def get_default_config(cls) -> "GPTConfig":
        """GPT-2 small."""
        return cls()

    @classmethod
    def nano(cls, vocab_size: int = 65, block_size: int = 64) -> "GPTConfig":
        """nanoGPT's CPU configuration: 4 layers, 4 heads, 128 wide."""
        return cls(vocab_size=vocab_size, block_size=block_size, n_layer=4, n_head=4, n_embd=128)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        from .config import dataclass_from_dict

        return dataclass_from_dict(cls, d)


class CausalSelfAttention(nn.Cell):
    """Masked multi-head self-attention with a fused ``c_attn`` (q|k|v) projection."""

    def __init__(self, c: GPTConfig, causal: Tensor, rope: Optional[RotaryEmbedding]):
        super().__init__()
        self.n_head = c.n_head
        self.c_attn = Linear(c.n_embd, 3 * c.n_embd, bias=c.bias, std=0.02)
        self.c_proj = Linear(c.n_embd, c.n_embd, bias=c.bias,
                             std=0.02 / math.sqrt(2 * c.n_layer))  # GPT-2's residual scaling
        self.attn_dropout_p = float(c.dropout)
        self.resid_dropout = nn.Dropout(p=c.dropout)
        self._causal = causal  # (L, L) bool constant shared by every layer
        self.rope = rope

    def construct(self, x: Tensor, cache: Optional[LayerKV] = None, past: int = 0,
                  key_mask: Optional[Tensor] = None, positions: Optional[Tensor] = None,
                  return_weights: bool = False):
        b, t, c = x.shape
        q, k, v = ops.split(self.c_attn(x), c, axis=2)  # 3 x (B, T, C)
        q, k, v = split_heads(q, self.n_head), split_heads(k, self.n_head), split_heads(v, self.n_head)
        if self.rope is not None:  # (B, H, T, d)
            pos = positions if positions is not None else past
            q, k = self.rope(q, pos), self.rope(k, pos)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, H, P+T, d)
        if past == 0 and t == self._causal.shape[0]:
            mask = self._causal  # (T, T): the common training case, no slicing op
        else:
            mask = self._causal[past:past + t, :past + t]  # (T, P+T)
        guard = False  # with a causal mask alone every position sees at least itself
        if key_mask is not None:  # (B, P+T) -> (B, 1, 1, P+T)
            mask = ops.logical_and(mask, key_mask.reshape(b, 1, 1, -1))
            guard = True
        res = scaled_dot_product_attention(q, k, v, mask, self.attn_dropout_p, return_weights,
                                           self.training, guard)
        out, w = (res[0], res[1]) if return_weights else (res, None)
        y = self.resid_dropout(self.c_proj(merge_heads(out)))  # (B, T, C)
        return (y, w) if return_weights else y


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

    def construct(self, x: Tensor) -> Tensor:  # (B, T, C) -> (B, T, C)
        h = self.c_fc(x)  # (B, T, 4C)
        if self.activation == "gelu":
            h = _gelu_tanh(h)
        elif self.activation == "relu":
            h = ops.relu(h)
        else:
            h = ops.silu(h) * self.c_gate(x)
        return self.dropout(self.c_proj(h))


class Block(nn.Cell):
    """One Transformer block (pre-norm for GPT-2, post-norm for GPT-1)."""

    def __init__(self, c: GPTConfig, causal: Tensor, rope: Optional[RotaryEmbedding]):
        super().__init__()
        self.pre_norm = c.layout == "gpt2"
        self.ln_1 = make_norm(c.norm, c.n_embd, c.layer_norm_epsilon)
        self.attn = CausalSelfAttention(c, causal, rope)
        self.ln_2 = make_norm(c.norm, c.n_embd, c.layer_norm_epsilon)
        # GPT-2 init: residual projections scaled by 1/sqrt(2 * n_layer)
        self.mlp = MLP(c, proj_std=0.02 / math.sqrt(2 * c.n_layer))

    def construct(self, x, cache=None, past=0, key_mask=None, positions=None,
                  return_weights=False):
        if self.pre_norm:
            a = self.attn(self.ln_1(x), cache, past, key_mask, positions, return_weights)
            a, w = (a[0], a[1]) if return_weights else (a, None)
            x = x + a
            x = x + self.mlp(self.ln_2(x))
        else:
            a = self.attn(x, cache, past, key_mask, positions, return_weights)
            a, w = (a[0], a[1]) if return_weights else (a, None)
            x = self.ln_1(x + a)
            x = self.ln_2(x + self.mlp(x))
        return (x, w) if return_weights else x


class GPT(nn.Cell):
    """Decoder-only language model.

    ``construct(idx (B, T), cache=None, attention_mask=None, position_ids=None,
    return_attention=False) -> logits (B, T, vocab_size)``.

    * ``cache``: a :class:`~mindtf.attention.KVCache` from :meth:`new_cache`; pass only the new
      tokens and the model attends to the cached ones (incremental decoding).
    * ``attention_mask``: ``(B, P+T)`` bool/int, 1 for real tokens and 0 for padding (batched
      generation with left-padded prompts).
    * ``return_attention``: also return a list of per-layer weights ``(B, H, T, P+T)``.
    * ``last_only``: return the logits of the last position only, ``(B, 1, V)`` (generation).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        c = self.config = config
        causal = Tensor(np.tril(np.ones((c.block_size, c.block_size), dtype=bool)))
        rope = (RotaryEmbedding(c.n_embd // c.n_head, c.block_size, c.rope_base)
                if c.position == "rope" else None)
        self.wte = Embedding(c.vocab_size, c.n_embd, std=0.02)
        self.wpe = LearnedPositionalEmbedding(c.block_size, c.n_embd) if rope is None else None
        self.drop = nn.Dropout(p=c.dropout)
        self.h = nn.CellList([Block(c, causal, rope) for _ in range(c.n_layer)])
        self.ln_f = make_norm(c.norm, c.n_embd, c.layer_norm_epsilon) if c.layout == "gpt2" else None
        self.lm_head = None if c.tie_weights else Linear(c.n_embd, c.vocab_size, bias=False)
        self._matmul_nt = ops.MatMul(transpose_b=True)
        if self.lm_head is not None:
            self.lm_head.weight.set_data(Tensor(np.random.normal(
                0, 0.02, self.lm_head.weight.shape).astype(np.float32)))

    # ------------------------------------------------------------------ forward
    def construct(self, idx: Tensor, cache: Optional[KVCache] = None,
                  attention_mask: Optional[Tensor] = None, position_ids: Optional[Tensor] = None,
                  return_attention: bool = False, last_only: bool = False):
        b, t = idx.shape
        past = 0 if cache is None else cache.length
        x = self.wte(idx)  # (B, T, C)
        if self.wpe is not None:
            pos = position_ids if position_ids is not None else past
            x = x + self.wpe(t, pos)  # (T, C) or (B, T, C)
        x = self.drop(x)
        key_mask = None
        if attention_mask is not None:
            key_mask = attention_mask.astype(ms.bool_)
        maps = []
        for i, block in enumerate(self.h):
            lc = cache[i] if cache is not None else None
            if return_attention:
                x, w = block(x, lc, past, key_mask, position_ids, True)
                maps.append(w)
            else:
                x = block(x, lc, past, key_mask, position_ids)
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
        """An empty key/value cache for :meth:`construct` / :meth:`generate`."""
        return KVCache(self.config.n_layer)

    def check_input(self, idx, past: int = 0) -> None:
        """Raise :class:`~mindtf.errors.InputError` for ids that would fail deep inside MindSpore."""
        arr = idx.asnumpy() if isinstance(idx, Tensor) else np.asarray(idx)
        if arr.ndim != 2:
            raise InputError(f"GPT expects token ids of shape (B, T), got shape {arr.shape}. "
                             "Add a batch dimension: ids[None, :].")
        if not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"token ids must be integers, got dtype {arr.dtype}.")
        v = self.config.vocab_size
        if arr.size and (arr.max() >= v or arr.min() < 0):
            bad = int(arr.max()) if arr.max() >= v else int(arr.min())
            raise InputError(f"token id {bad} is outside the vocabulary [0, {v}) of this model "
                             f"(config.vocab_size={v}). Was the text encoded with another "
                             "tokenizer?")
        if past + arr.shape[1] > self.config.block_size:
            raise InputError(
                f"sequence of {past + arr.shape[1]} tokens is longer than the model's "
                f"block_size={self.config.block_size} (its position table). Crop the input to "
                f"the last {self.config.block_size} tokens, e.g. ids[:, -block_size:].")

    def __call__(self, *args, **kwargs):
        # Host-side checks on user input. A graph that *contains* this model (a compiled
        # training step) does not call __call__; it checks its numpy batches instead.
        idx = args[0] if args else kwargs.get("idx")
        cache = args[1] if len(args) > 1 else kwargs.get("cache")
        if isinstance(idx, (Tensor, np.ndarray)):
            self.check_input(idx, 0 if cache is None else cache.length)
        if cache is not None:  # the Python-side cache only runs op by op
            from .runtime import pynative

            with pynative():
                return super().__call__(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    # ------------------------------------------------------------------ utilities
    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        n = sum(int(np.prod(p.shape)) for p in self.trainable_params())
        if exclude_embeddings and self.wpe is not None:
            n -= int(np.prod(self.wpe.weight.shape))
        return n

    def generate(self, idx, max_new_tokens: int, **kwargs):
        """Continue ``idx (B, T)`` by ``max_new_tokens`` tokens; see :func:`mindtf.generation.generate`."""
        from .generation import generate

        return generate(self, idx, max_new_tokens, **kwargs)

    @classmethod
    def from_pretrained(cls, path, **overrides) -> "GPT":
        """Load a Hugging Face GPT-2 directory (``config.json`` + ``model.safetensors`` or
        ``pytorch_model.bin``, read without torch) or a directory written by
        :meth:`save_pretrained`. See :func:`mindtf.hf.load_gpt`."""
        from .hf import load_gpt

        return load_gpt(path, **overrides)

    def save_pretrained(self, path) -> None:
        """Write ``config.json`` + ``model.safetensors`` (Hugging Face GPT-2 names)."""
        from .hf import save_gpt

        save_gpt(self, path)
