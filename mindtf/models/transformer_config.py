"""The configuration of :class:`~mindtf.models.transformer.Transformer` (no MindSpore import).

Each field's comment is its ``--model.FIELD`` help text in ``python -m mindtf train``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from mindtf.config import dataclass_from_dict
from mindtf.errors import ConfigError

__all__ = ["TransformerConfig"]


@dataclass
class TransformerConfig:
    """Hyper-parameters of :class:`Transformer` (defaults: the paper's "base" model)."""

    src_vocab_size: int = 10000  # source vocabulary size (recipes set it from the data)
    tgt_vocab_size: int = 10000  # target vocabulary size (recipes set it from the data)
    d_model: int = 512  # model width
    n_heads: int = 8  # attention heads (must divide d_model)
    n_encoder_layers: int = 6  # encoder layers
    n_decoder_layers: int = 6  # decoder layers
    d_ff: int = 2048  # feed-forward width
    dropout: float = 0.1  # dropout on embeddings, attention and residuals
    activation: str = "relu"  # "relu" | "gelu" | "swiglu"
    norm_first: bool = False  # False: post-norm (the paper); True: pre-norm
    final_norm: Optional[bool] = None  # LayerNorm after each stack; None: only with pre-norm
    layer_norm_eps: float = 1e-5  # LayerNorm epsilon
    max_len: int = 256  # longest sequence (size of the position table)
    positional: str = "sinusoidal"  # "sinusoidal" | "learned"
    scale_embeddings: bool = True  # multiply embeddings by sqrt(d_model)
    share_embeddings: bool = False  # one table for source and target (needs a joint vocab)
    tie_output: bool = False  # output projection = target embedding table
    pad_id: int = 1  # id of <pad> (recipes set it from the vocabulary)

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                              "choose n_heads that divides d_model.")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError("share_embeddings=True needs src_vocab_size == tgt_vocab_size "
                              "(build one joint vocabulary).")
        if self.positional not in ("sinusoidal", "learned"):
            raise ConfigError(f"positional={self.positional!r}: choose 'sinusoidal' or 'learned'.")

    @classmethod
    def get_default_config(cls) -> "TransformerConfig":
        return cls()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TransformerConfig":
        return dataclass_from_dict(cls, d)
