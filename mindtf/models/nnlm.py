"""The neural probabilistic language model of Bengio, Ducharme, Vincent and Jauvin (2003).

An n-gram model whose probabilities come from a network instead of counts: each of the n-1
previous tokens is looked up in a table C of learned feature vectors (an embedding), the vectors
are concatenated, and a tanh layer and a softmax give the next token's distribution::

    x = (C[w_{t-n+2}], ..., C[w_t])    y = b + W x + U tanh(d + H x)    P(w_{t+1} | .) = softmax(y)

    idx (B, T) ──left-pad n-2 pad ids──> (B, T+n-2) ──the window ending at each t──> (B, T, n-1)
      C: lookup, (V, m) table ──────────> (B, T, n-1, m) ──concatenate──> x (B, T, (n-1) m)
      H (+ d), tanh ────────────────────> a (B, T, h)
      U (+ b) on a, plus W on x (direct) > logits (B, T, V)    (softmax in the loss)

Every position t is predicted from its own window, so ``construct(idx (B, T)) -> (B, T, V)``
has the shape of GPT's and the same ``LMLossCell``, ``RandomLMBatches`` and ``Trainer`` train it
(compiled in GRAPH_MODE, or op by op in PyNative). The window of the first tokens of ``idx`` is
filled with ``config.pad_id``. Looking up ``C[w]`` is the product ``one_hot(w) @ C`` done
without the zeros: :meth:`NNLM.embed` computes both.
"""
from __future__ import annotations

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from mindtf.models.base import Pretrained, as_token_ids, check_token_ids
from mindtf.models.nnlm_config import NNLMConfig
from mindtf.nn.layers import Embedding, Linear

__all__ = ["NNLM", "NNLMConfig"]


class NNLM(Pretrained, nn.Cell):
    """Bengio et al.'s neural language model: ``construct(idx (B, T)) -> logits (B, T, V)``.

    Parameters carry the paper's letters: ``C.weight`` (V, m) the feature vectors,
    ``H.weight`` (h, (n-1) m) and ``H.bias`` (d) the hidden layer, ``U.weight`` (V, h) and
    ``U.bias`` (b) the output layer, ``W.weight`` (V, (n-1) m) the direct connections.
    """

    model_types = ("mindtf-nnlm",)
    config_class = NNLMConfig
    state_hint = "Check that config.json belongs to these weights (context, n_embd, n_hidden)."

    def __init__(self, config: NNLMConfig):
        super().__init__()
        c = self.config = config
        width = c.context * c.n_embd  # (n-1) m: the concatenated window
        self.C = Embedding(c.vocab_size, c.n_embd, std=1.0)
        self.H = Linear(width, c.n_hidden)
        self.U = Linear(c.n_hidden, c.vocab_size)
        self.W = Linear(width, c.vocab_size, bias=False) if c.direct else None
        self.dropout = nn.Dropout(p=c.dropout)

    @property
    def hidden_size(self) -> int:
        """The hidden layer's width (the Noam schedule scales with it)."""
        return self.config.n_hidden

    def windows(self, idx: Tensor) -> Tensor:
        """``idx (B, T)`` -> ``(B, T, n-1)``: the ids ending at each position, oldest first."""
        b, t = idx.shape
        k = self.config.context
        if k > 1:
            pad = ops.ones((b, k - 1), idx.dtype) * self.config.pad_id   # (B, n-2)
            idx = ops.concat((pad, idx), axis=1)                        # (B, T+n-2)
        return ops.stack([idx[:, j:j + t] for j in range(k)], axis=-1)  # (B, T, n-1)

    def embed(self, ids: Tensor, one_hot: bool = False) -> Tensor:
        """``C[ids]`` (..., m): a lookup, or with ``one_hot`` the same numbers as the matrix
        product ``one_hot(ids) (..., V) @ C (V, m)``, which multiplies V-1 zeros per id."""
        if not one_hot:
            return self.C(ids)
        hot = ops.one_hot(ids, self.config.vocab_size, Tensor(1.0, ms.float32),
                          Tensor(0.0, ms.float32))                      # (..., V)
        return ops.matmul(hot, self.C.weight)                           # (..., m)

    def construct(self, idx: Tensor) -> Tensor:
        b, t = idx.shape
        x = self.C(self.windows(idx))                                   # (B, T, n-1, m)
        x = x.reshape(b, t, -1)                                         # (B, T, (n-1) m)
        a = self.dropout(ops.tanh(self.H(x)))                           # (B, T, h)
        y = self.U(a)                                                   # (B, T, V)
        if self.W is not None:
            y = y + self.W(x)                                           # direct connections
        return y

    def check_input(self, idx) -> None:
        """Raise :class:`~mindtf.errors.InputError` for ids that would fail inside MindSpore."""
        check_token_ids(idx, self.config.vocab_size, "NNLM input")

    def __call__(self, *args, **kwargs):
        # host-side checks on user input; a compiled training step does not call __call__
        idx = args[0] if args else kwargs.get("idx")
        if isinstance(idx, (np.ndarray, list, tuple)):
            idx = Tensor(as_token_ids(idx))
            args, kwargs = ((idx, *args[1:]), kwargs) if args else (args, {**kwargs, "idx": idx})
        if isinstance(idx, Tensor):
            self.check_input(idx)
        return super().__call__(*args, **kwargs)

    def num_parameters(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.trainable_params())
