"""The encoder-decoder Transformer of "Attention Is All You Need" (Vaswani et al., 2017).

::

    src ids (B, S) -> embed * sqrt(D) + PE -> [encoder layer] x N -> memory (B, S, D)
    tgt ids (B, T) -> embed * sqrt(D) + PE -> [decoder layer] x N -> logits (B, T, V_tgt)
                                       (self-attention, cross-attention to memory, feed-forward)

Post-norm (the paper: ``x = norm(x + sublayer(x))``) or pre-norm
(``x = x + sublayer(norm(x))``, trains more stably when deep). Masks follow :mod:`mindtf.nn.masks`
(True = may attend); if you pass none, padding and causal masks are built from ``pad_id``.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np

from mindspore import Tensor, nn, ops

from mindtf.models.base import Pretrained, as_token_ids, check_token_ids
from mindtf.models.transformer_config import TransformerConfig
from mindtf.nn.attention import MultiHeadAttention
from mindtf.nn.kv_cache import KVCache, LayerKV
from mindtf.nn.layers import Embedding, FeedForward, LayerNorm, Linear
from mindtf.nn.masks import padding_mask
from mindtf.nn.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding

__all__ = ["TransformerConfig", "Transformer", "EncoderLayer", "DecoderLayer"]


class EncoderLayer(nn.Cell):
    """Self-attention + feed-forward, each wrapped in dropout, residual and LayerNorm."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.norm_first = c.norm_first
        self.self_attn = MultiHeadAttention(c.d_model, c.n_heads, c.dropout)
        self.ff = FeedForward(c.d_model, c.d_ff, c.activation, c.dropout)
        self.norm1 = LayerNorm(c.d_model, c.layer_norm_eps)
        self.norm2 = LayerNorm(c.d_model, c.layer_norm_eps)
        self.dropout1 = nn.Dropout(p=c.dropout)
        self.dropout2 = nn.Dropout(p=c.dropout)

    def construct(self, x: Tensor, mask: Optional[Tensor] = None, return_weights: bool = False):
        # x: (B, S, D); mask broadcasts to (B, H, S, S)
        h = self.norm1(x) if self.norm_first else x
        a, w = self.self_attn(h, mask=mask, return_weights=True)
        x = x + self.dropout1(a)
        if not self.norm_first:
            x = self.norm1(x)
        h = self.norm2(x) if self.norm_first else x
        x = x + self.dropout2(self.ff(h))
        if not self.norm_first:
            x = self.norm2(x)
        return (x, w) if return_weights else x


class DecoderLayer(nn.Cell):
    """Masked self-attention, cross-attention to the encoder memory, feed-forward."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.norm_first = c.norm_first
        self.self_attn = MultiHeadAttention(c.d_model, c.n_heads, c.dropout)
        self.cross_attn = MultiHeadAttention(c.d_model, c.n_heads, c.dropout)
        self.ff = FeedForward(c.d_model, c.d_ff, c.activation, c.dropout)
        self.norm1 = LayerNorm(c.d_model, c.layer_norm_eps)
        self.norm2 = LayerNorm(c.d_model, c.layer_norm_eps)
        self.norm3 = LayerNorm(c.d_model, c.layer_norm_eps)
        self.dropout1 = nn.Dropout(p=c.dropout)
        self.dropout2 = nn.Dropout(p=c.dropout)
        self.dropout3 = nn.Dropout(p=c.dropout)

    def construct(self, x: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                  memory_mask: Optional[Tensor] = None, self_cache: Optional[LayerKV] = None,
                  cross_cache: Optional[LayerKV] = None, return_weights: bool = False):
        # x: (B, T, D); memory: (B, S, D)
        h = self.norm1(x) if self.norm_first else x
        a, w_self = self.self_attn(h, mask=tgt_mask, cache=self_cache, return_weights=True)
        x = x + self.dropout1(a)
        if not self.norm_first:
            x = self.norm1(x)
        h = self.norm2(x) if self.norm_first else x
        a, w_cross = self.cross_attn(h, memory, memory, mask=memory_mask, cache=cross_cache,
                                     return_weights=True)
        x = x + self.dropout2(a)
        if not self.norm_first:
            x = self.norm2(x)
        h = self.norm3(x) if self.norm_first else x
        x = x + self.dropout3(self.ff(h))
        if not self.norm_first:
            x = self.norm3(x)
        return (x, w_self, w_cross) if return_weights else x


class Transformer(Pretrained, nn.Cell):
    """Encoder-decoder Transformer for sequence-to-sequence tasks such as translation.

    ``construct(src (B, S), tgt (B, T), src_mask=None, tgt_mask=None, return_attention=False)``
    returns logits ``(B, T, V_tgt)`` (and, with ``return_attention``, a dict of per-layer
    attention maps: ``encoder`` ``(B, H, S, S)``, ``decoder_self`` ``(B, H, T, T)``, ``cross``
    ``(B, H, T, S)``). Missing masks are built from ``config.pad_id``: ``src_mask``
    ``(B, 1, 1, S)`` and ``tgt_mask`` = padding & causal ``(B, 1, T, T)``.
    """

    model_types = ("mindtf-transformer",)
    config_class = TransformerConfig
    state_hint = ("Check that config.json belongs to these weights (d_model, layer counts, "
                  "vocabulary sizes).")

    def __init__(self, config: TransformerConfig):
        super().__init__()
        c = self.config = config
        std = c.d_model ** -0.5
        self.src_embed = Embedding(c.src_vocab_size, c.d_model, std)
        self.tgt_embed = self.src_embed if c.share_embeddings else Embedding(c.tgt_vocab_size,
                                                                             c.d_model, std)
        if c.positional == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(c.d_model, c.max_len, c.dropout)
        else:
            self.pos = LearnedPositionalEmbedding(c.max_len, c.d_model)
        self.emb_dropout = nn.Dropout(p=c.dropout)
        self.encoder_layers = nn.CellList([EncoderLayer(c) for _ in range(c.n_encoder_layers)])
        self.decoder_layers = nn.CellList([DecoderLayer(c) for _ in range(c.n_decoder_layers)])
        use_final = c.norm_first if c.final_norm is None else c.final_norm
        self.encoder_norm = LayerNorm(c.d_model, c.layer_norm_eps) if use_final else None
        self.decoder_norm = LayerNorm(c.d_model, c.layer_norm_eps) if use_final else None
        self.generator = None if c.tie_output else Linear(c.d_model, c.tgt_vocab_size)
        self._matmul_nt = ops.MatMul(transpose_b=True)
        self.emb_scale = math.sqrt(c.d_model) if c.scale_embeddings else 1.0
        # (L, L) lower-triangular table, sliced per call (a constant, so graph mode can use it)
        self._causal = Tensor(np.tril(np.ones((c.max_len, c.max_len), dtype=bool)))

    @property
    def hidden_size(self) -> int:
        """The model width (the Noam schedule scales with it)."""
        return self.config.d_model

    # ----------------------------------------------------------------- helpers
    def _embed(self, table: Embedding, ids: Tensor, offset=0) -> Tensor:
        x = table(ids) * self.emb_scale  # (B, T, D)
        if self.config.positional == "sinusoidal":
            return self.pos(x, offset)  # adds PE, then dropout
        return self.emb_dropout(x + self.pos(ids.shape[1], offset))

    def check_input(self, src=None, tgt=None, past: int = 0) -> None:
        """Host-side check of user token ids ``src (B, S)`` / ``tgt (B, T)`` (``past``: target
        positions already cached), raising :class:`~mindtf.errors.InputError` with the fix."""
        c = self.config
        if src is not None:
            check_token_ids(src, c.src_vocab_size, "src", max_len=c.max_len,
                            size_field="src_vocab_size")
        if tgt is not None:
            check_token_ids(tgt, c.tgt_vocab_size, "tgt", max_len=c.max_len, past=past,
                            size_field="tgt_vocab_size")

    def logits(self, h: Tensor) -> Tensor:
        """Project decoder states ``(B, T, D)`` to logits ``(B, T, V_tgt)``."""
        if self.generator is None:  # tied: one 2-D MatMul against the (V, D) table
            b, t, d = h.shape  # (ops.matmul(h, W.T) would broadcast W to (B, D, V) first)
            y = self._matmul_nt(h.reshape(b * t, d), self.tgt_embed.weight)  # (B*T, V)
            return y.reshape(b, t, -1)
        return self.generator(h)

    # ----------------------------------------------------------------- public API
    def encode(self, src: Tensor, src_mask: Optional[Tensor] = None,
               return_attention: bool = False):
        """``src (B, S) -> memory (B, S, D)`` (plus per-layer weights with return_attention)."""
        if src_mask is None:
            src_mask = padding_mask(src, self.config.pad_id)
        x = self._embed(self.src_embed, src)
        maps = []
        for layer in self.encoder_layers:
            x, w = layer(x, src_mask, True)
            maps.append(w)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return (x, maps) if return_attention else x

    def decode(self, tgt: Tensor, memory: Tensor, src_mask: Optional[Tensor] = None,
               tgt_mask: Optional[Tensor] = None, cache: Optional[List[KVCache]] = None,
               return_attention: bool = False, src_ids: Optional[Tensor] = None):
        """Target ids ``tgt (B, T)`` and encoder ``memory (B, S, D)`` -> logits ``(B, T, V)``.

        ``src_mask`` is the memory's key mask ``(B, 1, 1, S)`` (or give ``src_ids`` to build it).
        With ``cache`` (a pair ``[self_cache, cross_cache]`` from :meth:`new_cache`) only the new
        target positions are passed in ``tgt``; earlier ones are read from the cache.
        """
        offset = 0 if cache is None else cache[0].length
        t = tgt.shape[1]
        if tgt_mask is None:
            causal = self._causal[offset:offset + t, :offset + t]  # (T, P+T)
            if cache is None:
                tgt_mask = ops.logical_and(padding_mask(tgt, self.config.pad_id), causal)
            else:
                tgt_mask = causal
        if src_mask is None and src_ids is not None:
            src_mask = padding_mask(src_ids, self.config.pad_id)
        x = self._embed(self.tgt_embed, tgt, offset)
        self_maps, cross_maps = [], []
        for i, layer in enumerate(self.decoder_layers):
            sc = cache[0][i] if cache is not None else None
            cc = cache[1][i] if cache is not None else None
            x, ws, wc = layer(x, memory, tgt_mask, src_mask, sc, cc, True)
            self_maps.append(ws)
            cross_maps.append(wc)
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        logits = self.logits(x)
        return (logits, self_maps, cross_maps) if return_attention else logits

    def new_cache(self) -> List[KVCache]:
        """Empty ``[self-attention cache, cross-attention cache]`` for incremental decoding."""
        n = self.config.n_decoder_layers
        return [KVCache(n), KVCache(n, static=True)]

    def construct(self, src: Tensor, tgt: Tensor, src_mask: Optional[Tensor] = None,
                  tgt_mask: Optional[Tensor] = None, return_attention: bool = False):
        if src_mask is None:
            src_mask = padding_mask(src, self.config.pad_id)  # (B, 1, 1, S)
        if tgt_mask is None:
            t = tgt.shape[1]
            tgt_mask = ops.logical_and(padding_mask(tgt, self.config.pad_id), self._causal[:t, :t])
        if return_attention:
            memory, enc_maps = self.encode(src, src_mask, True)
            logits, dec_self, cross = self.decode(tgt, memory, src_mask, tgt_mask,
                                                  return_attention=True)
            return logits, {"encoder": enc_maps, "decoder_self": dec_self, "cross": cross}
        memory = self.encode(src, src_mask)
        return self.decode(tgt, memory, src_mask, tgt_mask)

    def __call__(self, *args, **kwargs):
        # host-side input checks before running (skipped when this model is traced inside a
        # compiled graph, where the caller checks its numpy batches instead)
        args = tuple(Tensor(as_token_ids(a, what)) if isinstance(a, (np.ndarray, list, tuple))
                     else a for a, what in zip(args, ("src", "tgt"))) + args[2:]
        src = args[0] if args and isinstance(args[0], Tensor) else None
        tgt = args[1] if len(args) > 1 and isinstance(args[1], Tensor) else None
        self.check_input(src, tgt)
        return super().__call__(*args, **kwargs)
