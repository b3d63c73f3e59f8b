"""The configuration of :class:`~mindtf.models.gpt.GPT`, and its ``config.json`` forms.

A GPT directory's ``config.json`` is Hugging Face GPT-2's (``n_embd``, ``n_layer``, ...), so that
``transformers`` reads what mindtf writes, plus a ``mindtf`` entry holding every field of
:class:`GPTConfig` for an exact round trip (RoPE, SwiGLU, RMSNorm and the GPT-1 layout have no
GPT-2 spelling; such models are saved with ``model_type: mindtf-gpt``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from mindtf.config import dataclass_from_dict
from mindtf.errors import ConfigError, check_choice, check_range

__all__ = ["GPTConfig"]

# Hugging Face activation names -> mindtf's
_HF_ACT = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu", "relu": "relu"}


@dataclass
class GPTConfig:
    """Hyper-parameters of :class:`~mindtf.models.gpt.GPT`. Defaults: GPT-2 small (124M)."""

    vocab_size: int = 50257  # number of token ids (the embedding table's rows)
    block_size: int = 1024  # longest sequence (size of the position table)
    n_layer: int = 12  # Transformer blocks
    n_head: int = 12  # attention heads per block (must divide n_embd)
    n_embd: int = 768  # model width
    dropout: float = 0.0  # embedding, attention and residual dropout
    bias: bool = True  # biases in projections and norms
    layout: str = "gpt2"  # "gpt2": pre-norm + final ln_f; "gpt1": post-norm, no ln_f
    position: str = "learned"  # "learned" (wpe) | "rope"
    activation: str = "gelu"  # "gelu" (tanh approximation) | "relu" | "swiglu"
    norm: str = "layernorm"  # "layernorm" | "rmsnorm"
    layer_norm_epsilon: float = 1e-5  # epsilon of the norms
    tie_weights: bool = True  # lm_head shares wte's matrix
    rope_base: float = 10000.0  # RoPE frequency base
    n_inner: Optional[int] = None  # MLP width (default 4 * n_embd)

    def __post_init__(self) -> None:
        name = f"{type(self).__name__}."
        for field in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_range(name + field, getattr(self, field), 1, integer=True)
        check_range(name + "n_inner", self.n_inner, 1, integer=True, optional=True)
        check_range(name + "dropout", self.dropout, 0, 1, hi_open=True)
        check_range(name + "layer_norm_epsilon", self.layer_norm_epsilon, 0, lo_open=True)
        check_range(name + "rope_base", self.rope_base, 1, lo_open=True)
        for field in ("bias", "tie_weights"):
            check_choice(name + field, getattr(self, field), (True, False))
        for field, allowed in (("layout", ("gpt2", "gpt1")), ("position", ("learned", "rope")),
                               ("activation", ("gelu", "relu", "swiglu")),
                               ("norm", ("layernorm", "rmsnorm"))):
            check_choice(name + field, getattr(self, field), allowed)
        if self.n_embd % self.n_head:
            raise ConfigError(f"{name}n_embd={self.n_embd} is not divisible by n_head="
                              f"{self.n_head}: each head gets n_embd / n_head features. Choose "
                              "n_head that divides n_embd.")
        if self.position == "rope" and (self.n_embd // self.n_head) % 2:
            raise ConfigError(f"{name}position='rope' needs an even head size (n_embd / n_head "
                              f"= {self.n_embd // self.n_head}): choose other n_embd or n_head.")

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
        return dataclass_from_dict(cls, d)

    # ------------------------------------------------------------------ config.json
    @property
    def gpt2_compatible(self) -> bool:
        """Whether Hugging Face's ``GPT2LMHeadModel`` can hold this model."""
        return (self.layout == "gpt2" and self.position == "learned" and self.norm == "layernorm"
                and self.activation in ("gelu", "relu") and self.bias)

    @classmethod
    def from_hf(cls, hf: dict) -> "GPTConfig":
        """Read a Hugging Face GPT-2 ``config.json`` dict (or one written by :meth:`to_hf`)."""
        if "mindtf" in hf:  # written by mindtf: exact round trip
            return cls.from_dict(hf["mindtf"])
        act = hf.get("activation_function", "gelu_new")
        if act not in _HF_ACT:
            raise ConfigError(f"activation_function={act!r} is not supported by mindtf's GPT "
                              f"(supported: {sorted(_HF_ACT)}).")
        return cls(
            vocab_size=int(hf["vocab_size"]), block_size=int(hf.get("n_positions", 1024)),
            n_layer=int(hf["n_layer"]), n_head=int(hf["n_head"]), n_embd=int(hf["n_embd"]),
            n_inner=hf.get("n_inner"), dropout=float(hf.get("resid_pdrop", 0.0)),
            layer_norm_epsilon=float(hf.get("layer_norm_epsilon", 1e-5)),
            activation=_HF_ACT[act], tie_weights=bool(hf.get("tie_word_embeddings", True)))

    def to_hf(self) -> dict:
        """A ``config.json`` dict readable by ``transformers`` (when :attr:`gpt2_compatible`)
        and, through its ``mindtf`` entry, by :meth:`from_hf` exactly."""
        d = {"vocab_size": self.vocab_size, "n_positions": self.block_size,
             "n_ctx": self.block_size, "n_embd": self.n_embd, "n_layer": self.n_layer,
             "n_head": self.n_head, "n_inner": self.n_inner,
             "activation_function": "gelu_new" if self.activation == "gelu" else self.activation,
             "resid_pdrop": self.dropout, "embd_pdrop": self.dropout, "attn_pdrop": self.dropout,
             "layer_norm_epsilon": self.layer_norm_epsilon,
             "tie_word_embeddings": self.tie_weights, "mindtf": self.to_dict()}
        if self.gpt2_compatible:
            d.update({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
        else:
            d["model_type"] = "mindtf-gpt"
        return d
