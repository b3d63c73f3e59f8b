"""Building blocks: linear layers, embeddings, normalisation and the feed-forward block.

Parameters are named like PyTorch / Hugging Face (``weight``, ``bias``) so that checkpoints load by
name. Every layer uses ``mindspore.ops`` functions that exist on CPU, GPU and Ascend, so one code
path serves all three; on the CPU, :class:`LayerNorm` and the tanh-GELU of :class:`FeedForward`
run mindtf's own kernels instead (:mod:`mindtf.kernels`, chosen when the layer is built; same
parameters, same results to float32 rounding).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.ops import operations as P

from mindtf.errors import ConfigError
from mindtf.kernels import gelu_tanh_op, layer_norm_op

__all__ = ["Linear", "Embedding", "LayerNorm", "RMSNorm", "FeedForward", "ACTIVATIONS", "activate",
           "gelu_tanh", "make_norm", "count_parameters", "dtype_min"]


def _uniform(shape, bound: float) -> Tensor:
    return Tensor(np.random.uniform(-bound, bound, size=shape).astype(np.float32))


def _normal(shape, std: float) -> Tensor:
    return Tensor(np.random.normal(0.0, std, size=shape).astype(np.float32))


class Linear(nn.Cell):
    """``y = x W^T + b`` with ``W`` of shape ``(out_features, in_features)``, as
    ``torch.nn.Linear``.

    Initialised like PyTorch, ``U(-1/sqrt(in), 1/sqrt(in))``, or, with ``std``, as GPT-2:
    ``N(0, std)`` weights and zero bias (seed numpy / call :func:`mindtf.setup` for reproducible
    weights). The ``(out, in)`` layout is also the fast one: MindSpore's CPU MatMul with
    ``transpose_b=True`` measured 1.5x faster than with an ``(in, out)`` matrix.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 std: Optional[float] = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        if std is None:
            bound = 1.0 / math.sqrt(in_features)
            w, b = _uniform((out_features, in_features), bound), _uniform((out_features,), bound)
        else:
            w = _normal((out_features, in_features), std)
            b = Tensor(np.zeros(out_features, np.float32))
        self.weight = Parameter(w, name="weight")
        self.bias = Parameter(b, name="bias") if bias else None
        self.matmul = ops.MatMul(transpose_b=True)

    def construct(self, x: Tensor) -> Tensor:
        shape = x.shape
        y = self.matmul(x.reshape(-1, shape[-1]), self.weight)  # (N, out)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(shape[:-1] + (self.out_features,))  # (..., out)


class Embedding(nn.Cell):
    """Lookup table ``weight[ids]`` with ``weight`` of shape ``(num_embeddings, dim)``."""

    def __init__(self, num_embeddings: int, dim: int, std: float = 1.0):
        super().__init__()
        self.num_embeddings, self.dim = num_embeddings, dim
        self.weight = Parameter(_normal((num_embeddings, dim), std), name="weight")

    def construct(self, ids: Tensor) -> Tensor:
        return ops.gather(self.weight, ids, 0)  # (..., dim)


class LayerNorm(nn.Cell):
    """Layer normalisation over the last dimension, ``eps`` = 1e-5 by default (as PyTorch and
    GPT-2; MindSpore's ``nn.LayerNorm`` defaults to 1e-7).

    ::

        x (..., D) ──► float32 on CPU with mindtf.kernels active? ──yes──► MindtfLayerNorm
                                        │ no                               (threads over rows)
                                        ▼
                                MindSpore's LayerNorm primitive

    The kernel is chosen when the layer is built (``mindtf.setup(device=...)`` first); the
    parameters (``weight``, ``bias``) are the same either way.
    """

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True):
        super().__init__()
        self.dim, self.eps = dim, float(eps)
        self.weight = Parameter(Tensor(np.ones(dim, np.float32)), name="weight")
        # ops.layer_norm needs a bias tensor; a bias-free norm uses a constant zero
        self.bias = Parameter(Tensor(np.zeros(dim, np.float32)), name="bias") if bias else None
        self._zero = Tensor(np.zeros(dim, np.float32))
        # the LayerNorm primitive (ops.layer_norm's LayerNormExt kernel is not on CPU)
        self._norm = P.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=self.eps)
        self.kernel = layer_norm_op()  # mindtf's CPU kernel, or None: the primitive above
        self._eps = Tensor(np.array([self.eps], np.float32))  # the kernel takes eps as a tensor

    def construct(self, x: Tensor) -> Tensor:
        bias = self.bias if self.bias is not None else self._zero.astype(x.dtype)
        if self.kernel is not None and x.dtype == ms.float32:
            return self.kernel(x, self.weight, bias, self._eps)[0]
        return self._norm(x, self.weight, bias)[0]


class RMSNorm(nn.Cell):
    """Root-mean-square normalisation: ``x / sqrt(mean(x^2) + eps) * weight`` (no centring)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, float(eps)
        self.weight = Parameter(Tensor(np.ones(dim, np.float32)), name="weight")

    def construct(self, x: Tensor) -> Tensor:
        ms_ = ops.mean(x * x, -1, keep_dims=True)  # (..., 1)
        return x * ops.rsqrt(ms_ + self.eps) * self.weight


def gelu_tanh(x: Tensor) -> Tensor:
    """GELU, tanh approximation (GPT-2's "gelu_new"):
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, written with the identity
    ``0.5 (1 + tanh(z)) = sigmoid(2 z)``. Mathematically the same as
    ``ops.gelu(x, approximate="tanh")``; measured 2-3x faster on CPU, forward and backward."""
    return x * ops.sigmoid(1.5957691216057308 * (x + 0.044715 * (x * x * x)))


ACTIVATIONS = {"relu": ops.relu, "gelu": gelu_tanh, "gelu_new": gelu_tanh, "silu": ops.silu}


class FeedForward(nn.Cell):
    """Position-wise feed-forward block ``W2 · act(W1 · x)`` (dropout after the activation).

    Args:
        d_model: model width.
        d_ff: hidden width (typically ``4 * d_model``).
        activation: ``"relu"`` (the 2017 Transformer), ``"gelu"`` (tanh approximation, as GPT-2)
            or ``"swiglu"`` (``W2 · (silu(W1 x) * W3 x)``, as LLaMA).
        dropout: dropout probability on the hidden activations.
        bias: whether the projections have biases.

    Parameters are named ``linear1``/``linear2`` (PyTorch's names); SwiGLU adds ``linear3``.
    """

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu", dropout: float = 0.0,
                 bias: bool = True):
        super().__init__()
        if activation not in ("relu", "gelu", "swiglu"):
            raise ConfigError(f"activation={activation!r}: choose 'relu', 'gelu' or 'swiglu'.")
        self.activation = activation
        self.linear1 = Linear(d_model, d_ff, bias)
        self.linear2 = Linear(d_ff, d_model, bias)
        self.linear3 = Linear(d_model, d_ff, bias) if activation == "swiglu" else None
        self.dropout = nn.Dropout(p=dropout)
        self.gelu_kernel = gelu_tanh_op() if activation == "gelu" else None  # CPU kernel or None

    def construct(self, x: Tensor) -> Tensor:  # (B, T, d_model) -> (B, T, d_model)
        h = activate(self.activation, self.linear1(x), self.linear3, x,
                     self.gelu_kernel)  # (B, T, d_ff)
        return self.linear2(self.dropout(h))


def activate(kind: str, h: Tensor, gate: Optional[nn.Cell] = None, x: Optional[Tensor] = None,
             gelu_kernel=None) -> Tensor:
    """The hidden activation of a feed-forward block: ``relu(h)``, ``gelu_tanh(h)`` or, for
    ``"swiglu"``, ``silu(h) * gate(x)``. Shared by :class:`FeedForward` and GPT's ``MLP``.
    ``gelu_kernel`` (from :func:`mindtf.kernels.gelu_tanh_op`, taken when the block is built)
    computes the GELU of float32 ``h`` in one CPU kernel."""
    if kind == "relu":
        return ops.relu(h)
    if kind == "gelu":
        if gelu_kernel is not None and h.dtype == ms.float32:
            return gelu_kernel(h)
        return gelu_tanh(h)
    return ops.silu(h) * gate(x)


def make_norm(kind: str, dim: int, eps: Optional[float] = None) -> nn.Cell:
    """``"layernorm"`` or ``"rmsnorm"`` of width ``dim``."""
    if kind == "layernorm":
        return LayerNorm(dim, 1e-5 if eps is None else eps)
    if kind == "rmsnorm":
        return RMSNorm(dim, 1e-6 if eps is None else eps)
    raise ConfigError(f"norm={kind!r}: choose 'layernorm' or 'rmsnorm'.")


def count_parameters(cell: nn.Cell, trainable_only: bool = True) -> int:
    """Number of scalar parameters in ``cell``."""
    params = cell.trainable_params() if trainable_only else cell.get_parameters()
    return int(sum(int(np.prod(p.shape)) for p in params))


def dtype_min(dtype) -> float:
    """Most negative finite value of a float dtype (used to mask scores without producing NaN)."""
    if dtype == ms.float16:
        return float(np.finfo(np.float16).min)
    if dtype == ms.bfloat16:
        return -3.38e38
    return float(np.finfo(np.float32).min)
