"""The configuration of :class:`~mindtf.models.nnlm.NNLM` (no MindSpore import).

Each field's comment says what it is in Bengio et al. (2003)'s notation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from mindtf.config import dataclass_from_dict
from mindtf.errors import check_choice, check_range

__all__ = ["NNLMConfig"]


@dataclass
class NNLMConfig:
    """Hyper-parameters of :class:`~mindtf.models.nnlm.NNLM` (defaults: a character model)."""

    vocab_size: int = 65  # |V|: number of token ids (recipes set it from the tokenizer)
    context: int = 8  # n - 1: how many previous tokens the model sees
    n_embd: int = 32  # m: size of a token's feature vector (a row of C)
    n_hidden: int = 256  # h: units of the tanh hidden layer
    direct: bool = True  # direct connections W from the features to the output
    dropout: float = 0.0  # dropout on the hidden layer (not in the paper)
    pad_id: int = 0  # the id that fills the window before the first token

    def __post_init__(self) -> None:
        name = f"{type(self).__name__}."
        for field in ("vocab_size", "context", "n_embd", "n_hidden"):
            check_range(name + field, getattr(self, field), 1, integer=True)
        check_choice(name + "direct", self.direct, (True, False))
        check_range(name + "dropout", self.dropout, 0, 1, hi_open=True)
        check_range(name + "pad_id", self.pad_id, 0, self.vocab_size - 1, integer=True,
                    fix="Any id of the vocabulary works; the window's padding is learned.")

    @property
    def order(self) -> int:
        """n: the model is an n-gram model whose probabilities come from a network."""
        return self.context + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NNLMConfig":
        return dataclass_from_dict(cls, d)
