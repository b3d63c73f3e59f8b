"""The PyTorch reference for ``bench_train.py --configs translation``: ``torch.nn.Transformer``.

It mirrors :class:`mindtf.models.transformer.Transformer` as the translation recipe builds it
(``configs/multi30k_transformer.yaml``), so both have exactly the same parameters::

    src (B, S) -> src_embed * sqrt(D) + sinusoidal PE ─► nn.Transformer encoder (post-norm) ─┐
    tgt_in (B, T) -> tgt_embed * sqrt(D) + sinusoidal PE ─► nn.Transformer decoder ◄─ memory ┘
        -> generator Linear(D, V_tgt) -> logits (B, T, V_tgt)

* ``nn.Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward,
  dropout, activation="relu", batch_first=True, norm_first=False)`` built with
  ``custom_encoder`` / ``custom_decoder`` = ``nn.TransformerEncoder`` / ``nn.TransformerDecoder``
  of the same layers with ``norm=None``: a post-norm mindtf model has no final encoder/decoder
  LayerNorm (``TransformerConfig.final_norm`` is ``None``: only with pre-norm), while a plain
  ``nn.Transformer`` always adds both (4 x d_model parameters more).
* attention: ``nn.MultiheadAttention`` (fused ``in_proj`` of q|k|v + ``out_proj``, biases) --
  the same 4 D^2 + 4 D parameters as mindtf's separate q/k/v/out projections.
* masks as mindtf's: a causal target mask (``tgt_is_causal=True``) plus key-padding masks for
  the source (encoder self-attention and cross-attention) and the target.
* untied output projection with bias (``tie_output: false``), separate embedding tables.

:func:`train_step` is one eager step: forward, label-smoothed cross-entropy over the non-padding
target tokens (``F.cross_entropy(..., ignore_index=pad, label_smoothing=0.1)``, the formula of
``mindtf.training.losses.cross_entropy``), backward, ``clip_grad_norm_``, ``AdamW.step()``.
The optimiser comes from :func:`torch_gpt.make_optimizer` (the same no-decay rule as mindtf).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["TorchTransformerConfig", "TorchTransformer", "train_step"]


@dataclass
class TorchTransformerConfig:
    src_vocab_size: int = 7857
    tgt_vocab_size: int = 5977
    d_model: int = 256
    n_heads: int = 4
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    d_ff: int = 512
    dropout: float = 0.0
    max_len: int = 128
    pad_id: int = 1
    layer_norm_eps: float = 1e-5


def sinusoidal_table(max_len: int, d: int) -> torch.Tensor:
    """``(max_len, d)`` sine/cosine positions (the paper's, as ``mindtf.nn.positional``)."""
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(max_len, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class TorchTransformer(nn.Module):
    """``forward(src (B, S), tgt_in (B, T)) -> logits (B, T, V_tgt)``."""

    def __init__(self, c: TorchTransformerConfig):
        super().__init__()
        self.config = c
        d = c.d_model
        self.src_embed = nn.Embedding(c.src_vocab_size, d)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, d)
        kw = dict(d_model=d, nhead=c.n_heads, dim_feedforward=c.d_ff, dropout=c.dropout,
                  activation="relu", layer_norm_eps=c.layer_norm_eps, batch_first=True,
                  norm_first=False)
        encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**kw), c.n_encoder_layers,
                                        norm=None, enable_nested_tensor=False)
        decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**kw), c.n_decoder_layers,
                                        norm=None)
        self.transformer = nn.Transformer(
            d_model=d, nhead=c.n_heads, num_encoder_layers=c.n_encoder_layers,
            num_decoder_layers=c.n_decoder_layers, dim_feedforward=c.d_ff, dropout=c.dropout,
            batch_first=True, custom_encoder=encoder, custom_decoder=decoder)
        self.generator = nn.Linear(d, c.tgt_vocab_size)
        self.register_buffer("pe", sinusoidal_table(c.max_len, d), persistent=False)
        self.register_buffer("causal", torch.triu(torch.ones(c.max_len, c.max_len,
                                                             dtype=torch.bool), 1),
                             persistent=False)  # True = may NOT attend (torch's convention)
        self.scale = math.sqrt(d)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        s, t = src.shape[1], tgt.shape[1]
        src_pad = src == self.config.pad_id  # (B, S) True = padding
        tgt_pad = tgt == self.config.pad_id  # (B, T)
        x = self.src_embed(src) * self.scale + self.pe[:s]  # (B, S, D)
        y = self.tgt_embed(tgt) * self.scale + self.pe[:t]  # (B, T, D)
        h = self.transformer(x, y, tgt_mask=self.causal[:t, :t], src_key_padding_mask=src_pad,
                             tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad,
                             tgt_is_causal=True)  # (B, T, D)
        return self.generator(h)  # (B, T, V_tgt)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def train_step(model: TorchTransformer, opt: torch.optim.Optimizer, src: torch.Tensor,
               tgt_in: torch.Tensor, tgt_out: torch.Tensor, grad_clip: float = 1.0,
               label_smoothing: float = 0.1) -> float:
    """One optimiser step; returns the loss as a Python float (which also synchronises)."""
    logits = model(src, tgt_in)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1),
                           ignore_index=model.config.pad_id, label_smoothing=label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return float(loss.item())
