"""A minimal PyTorch GPT-2-style model: the reference ``bench_train.py`` measures mindtf against.

It mirrors :class:`mindtf.models.gpt.GPT` with the GPT-2 layout, so both have exactly the same
parameters:

* token embedding ``wte`` + learned position embedding ``wpe`` (no dropout: p = 0);
* ``n_layer`` pre-norm blocks: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``;
* attention: one fused ``c_attn`` Linear for q|k|v, then ``F.scaled_dot_product_attention(...,
  is_causal=True)`` -- what a PyTorch user gets by default -- and ``c_proj``;
* MLP: ``c_fc`` (4x wider), tanh-approximated GELU, ``c_proj``;
* final ``ln_f`` and a head tied to ``wte`` (no extra parameters).

Initialisation follows GPT-2 (normal 0.02, residual projections 0.02 / sqrt(2 n_layer), zero
biases). :func:`make_optimizer` builds ``torch.optim.AdamW`` with the same no-decay rule as
:func:`mindtf.training.optim.decay_mask_for` (only >= 2-D weights that are not embeddings are
decayed), and :func:`train_step` does one eager step: forward, cross-entropy, backward,
``clip_grad_norm_(…, 1.0)``, ``optimizer.step()``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["TorchGPTConfig", "TorchGPT", "make_optimizer", "train_step"]


@dataclass
class TorchGPTConfig:
    vocab_size: int = 50304
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    layer_norm_epsilon: float = 1e-5


class SelfAttention(nn.Module):
    def __init__(self, c: TorchGPTConfig):
        super().__init__()
        self.n_head = c.n_head
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)  # 3 x (B, T, C)
        h = self.n_head
        q = q.view(b, t, h, c // h).transpose(1, 2)  # (B, H, T, d)
        k = k.view(b, t, h, c // h).transpose(1, 2)
        v = v.view(b, t, h, c // h).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, d)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class MLP(nn.Module):
    def __init__(self, c: TorchGPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd)
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, c: TorchGPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.attn = SelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.mlp = MLP(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TorchGPT(nn.Module):
    """``forward(idx (B, T)) -> logits (B, T, V)``."""

    def __init__(self, c: TorchGPTConfig):
        super().__init__()
        self.config = c
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.h = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.register_buffer("pos", torch.arange(c.block_size), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        proj_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, proj_std)
            elif name.endswith("bias") and "ln_" not in name:
                nn.init.zeros_(p)
            elif p.dim() >= 2:  # wte, wpe, c_attn, c_fc
                nn.init.normal_(p, 0.0, 0.02)
            # LayerNorm weight = 1, bias = 0 already

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.shape
        x = self.wte(idx) + self.wpe(self.pos[:t])  # (B, T, C)
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)
        return F.linear(x, self.wte.weight)  # tied head: (B, T, V)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def decays(name: str, p: torch.Tensor) -> bool:
    """The rule of ``mindtf.training.optim.decay_mask_for``: decay matrices, never
    embeddings, norms or biases."""
    if p.dim() < 2:
        return False
    parts = name.lower().replace("/", ".").replace("_", ".").split(".")
    return not any(part.startswith(("ln", "wte", "wpe"))
                   or any(s in part for s in ("norm", "embed", "bias")) for part in parts)


def make_optimizer(model: nn.Module, lr: float = 1e-3, betas=(0.9, 0.99), eps: float = 1e-8,
                   weight_decay: float = 0.1) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` with two groups (decayed matrices / everything else), defaults kept
    (no ``foreach``/``fused`` forced: what a user gets out of the box)."""
    named = list(model.named_parameters())
    decay = [p for n, p in named if decays(n, p)]
    rest = [p for n, p in named if not decays(n, p)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=betas, eps=eps)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               grad_clip: float = 1.0) -> float:
    """One optimiser step; returns the loss as a Python float (which also synchronises)."""
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return float(loss.item())
