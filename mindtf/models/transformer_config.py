"""The configuration of :class:`~mindtf.models.transformer.Transformer` (no MindSpore import).

Each field's comment is its ``--model.FIELD`` help text in ``python -m mindtf train``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from mindtf.config import dataclass_from_dict
from mindtf.errors import ConfigError, check_choice, check_range

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
        name = f"{type(self).__name__}."
        for field in ("src_vocab_size", "tgt_vocab_size", "d_model", "n_heads",
                      "n_encoder_layers", "n_decoder_layers", "d_ff", "max_len"):
            check_range(name + field, getattr(self, field), 1, integer=True)
        check_range(name + "dropout", self.dropout, 0, 1, hi_open=True)
        check_range(name + "layer_norm_eps", self.layer_norm_eps, 0, lo_open=True)
        check_range(name + "pad_id", self.pad_id, 0, min(self.src_vocab_size,
                                                         self.tgt_vocab_size) - 1, integer=True,
                    fix="It is the id of <pad> in both vocabularies.")
        for field in ("norm_first", "scale_embeddings", "share_embeddings", "tie_output"):
            check_choice(name + field, getattr(self, field), (True, False))
        if self.final_norm is not None:
            check_choice(name + "final_norm", self.final_norm, (True, False))
        check_choice(name + "activation", self.activation, ("relu", "gelu", "swiglu"))
        check_choice(name + "positional", self.positional, ("sinusoidal", "learned"))
        if self.d_model % self.n_heads:
            raise ConfigError(f"{name}d_model={self.d_model} is not divisible by n_heads="
                              f"{self.n_heads}: choose n_heads that divides d_model.")
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise ConfigError(f"{name}d_model={self.d_model}: sinusoidal positions need an even "
                              "d_model; choose an even one or positional='learned'.")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError("share_embeddings=True needs src_vocab_size == tgt_vocab_size "
                              "(build one joint vocabulary).")

    @classmethod
    def get_default_config(cls) -> "TransformerConfig":
        return cls()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TransformerConfig":
        return dataclass_from_dict(cls, d)
