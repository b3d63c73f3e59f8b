"""The kernels as MindSpore operators (``ops.Custom``, ``func_type="aot"``), each with its backward.

::

    layer_norm_op()      (x (..., D), gamma (D), beta (D), eps (1,)) -> (y, mean (N,), rstd (N,))
                         backward: MindtfLayerNormGrad -> dx, dgamma, dbeta
    gelu_tanh_op()       x -> x * sigmoid(1.5958 (x + 0.044715 x^3))
                         backward: MindtfGeluTanhGrad -> dx
    masked_softmax_op()  (scores (..., Tq, Tk), mask (Tq, Tk) bool) -> weights (..., Tq, Tk)
                         backward: MindtfMaskedSoftmaxGrad -> dscores
    fused_attention_op() (qkv (B, T, 3, H, D), mask (T, T) bool) -> (y (B, T, H, D),
                         weights (B, H, T, T)); backward: MindtfFusedAttentionGrad -> dqkv
    sum_squares_op()     (g_1, ..., g_k) -> (1,) sum of all squares    (no backward: optimiser)
    adamw_op(k)          (k params, k m, k v, k grads, hyper (6,), decay (k,)) -> token (1,);
                         params, m, v updated in place (no backward: optimiser)

Each ``*_op()`` returns the operator when the kernels are active (:func:`active`: the device is
the CPU, ``MINDTF_KERNELS`` is not ``0`` and the library built), else ``None`` — the caller then
uses MindSpore's built-in ops. Call them when a layer is built (``__init__``), not inside
``construct``; the operators themselves work in GRAPH_MODE and PyNative alike. All kernels take
float32 (callers keep the built-in path for other dtypes).
"""
from __future__ import annotations

import functools
import platform
import warnings
from typing import Optional

import mindspore as ms
from mindspore import ops
from mindspore.ops import signature as sig

from mindtf.kernels.build import KernelWarning, library, switch

__all__ = ["active", "layer_norm_op", "gelu_tanh_op", "masked_softmax_op", "fused_attention_op",
           "sum_squares_op", "adamw_op"]


def _rows(shape) -> int:
    n = 1
    for s in shape[:-1]:
        n *= int(s)
    return n


@functools.lru_cache(maxsize=8)
def _warn_once(message: str) -> None:
    warnings.warn(message, KernelWarning, stacklevel=4)


def active() -> bool:
    """Whether mindtf's custom kernels are used for layers built now: ``MINDTF_KERNELS`` is
    ``auto`` or ``1``, the system is Linux (MindSpore runs custom operators there only),
    MindSpore's device target is the CPU, and the library built (the first call compiles it; a
    failure warns once and returns ``False``)."""
    mode = switch()
    if mode == "0":
        return False
    target = ms.get_context("device_target")
    where = target if target != "CPU" else (None if platform.system() == "Linux"
                                            else platform.system())
    if where is not None:
        if mode == "1":
            _warn_once(f"MINDTF_KERNELS=1, but mindtf's custom kernels exist for the CPU on "
                       f"Linux only; here it is {where}, so MindSpore's built-in ops are used.")
        return False
    return library() is not None


def _make(factory, lib: str) -> Optional[ops.Custom]:
    """``factory(lib)``, or ``None`` after one warning if MindSpore refuses the operator."""
    try:
        return factory(lib)
    except Exception as exc:  # a MindSpore without AOT custom operators: keep the built-in ops
        _warn_once(f"mindtf's CPU kernels are unavailable, using MindSpore's built-in ops: "
                   f"ops.Custom failed ({type(exc).__name__}: {exc}).")
        return None


# Output shape / dtype functions of the operators, from their inputs' shapes or dtypes. Named
# functions, not lambdas: MindSpore 2.7's graph compiler parses a lambda from its source line and
# fails on a line that holds a call or two lambdas.
def _like_first(first, *rest):
    return first


def _like_second(first, second, *rest):
    return second


def _twice_first(first, *rest):
    return first, first


def _ln_grad_like(dy, x, gamma, mean, rstd):  # dx, dgamma, dbeta
    return x, gamma, gamma


def _ln_shapes(x, gamma, beta, eps):  # y, mean (N,), rstd (N,)
    return x, [_rows(x)], [_rows(x)]


def _ln_dtypes(x, gamma, beta, eps):
    return x, x, x


def _one_element(*inputs):
    return [1]


def _float32(*inputs):
    return ms.float32


def _custom(lib: str, name: str, out_shape, out_dtype, bprop=None) -> ops.Custom:
    return ops.Custom(f"{lib}:{name}", out_shape=out_shape, out_dtype=out_dtype,
                      func_type="aot", bprop=bprop)


@functools.lru_cache(maxsize=4)
def _layer_norm(lib: str) -> ops.Custom:
    grad = _custom(lib, "MindtfLayerNormGrad", _ln_grad_like, _ln_grad_like)
    zeros_like = ops.ZerosLike()

    def bprop(x, gamma, beta, eps, out, dout):
        dx, dgamma, dbeta = grad(dout[0], x, gamma, out[1], out[2])
        return dx, dgamma, dbeta, zeros_like(eps)

    return _custom(lib, "MindtfLayerNorm", _ln_shapes, _ln_dtypes, bprop)


@functools.lru_cache(maxsize=4)
def _gelu_tanh(lib: str) -> ops.Custom:
    grad = _custom(lib, "MindtfGeluTanhGrad", _like_first, _like_first)

    def bprop(x, out, dout):
        return (grad(dout, x),)

    return _custom(lib, "MindtfGeluTanh", _like_first, _like_first, bprop)


@functools.lru_cache(maxsize=4)
def _masked_softmax(lib: str) -> ops.Custom:
    grad = _custom(lib, "MindtfMaskedSoftmaxGrad", _like_first, _like_first)
    zeros_like = ops.ZerosLike()

    def bprop(scores, mask, out, dout):
        return grad(out, dout, mask), zeros_like(mask)

    return _custom(lib, "MindtfMaskedSoftmax", _like_first, _like_first, bprop)


@functools.lru_cache(maxsize=4)
def _fused_attention(lib: str) -> ops.Custom:
    grad = _custom(lib, "MindtfFusedAttentionGrad", _like_second, _like_second)
    zeros_like = ops.ZerosLike()

    def bprop(qkv, mask, out, dout):  # dout[1] (the weights' gradient) is not propagated
        return grad(dout[0], qkv, out[1], mask), zeros_like(mask)

    def shapes(qkv, mask):
        b, t, _, h, d = qkv
        return [b, t, h, d], [b, h, t, t]

    return _custom(lib, "MindtfFusedAttention", shapes, _twice_first, bprop)


def layer_norm_op() -> Optional[ops.Custom]:
    """LayerNorm over the last axis: ``op(x, gamma, beta, eps) -> (y, mean, rstd)`` where
    ``eps`` is a float32 Tensor of shape ``(1,)``; ``None`` when the kernels are not active."""
    return _make(_layer_norm, library()) if active() else None


def gelu_tanh_op() -> Optional[ops.Custom]:
    """GELU, tanh approximation: ``op(x) -> y``; ``None`` when the kernels are not active."""
    return _make(_gelu_tanh, library()) if active() else None


def masked_softmax_op() -> Optional[ops.Custom]:
    """Softmax over the last axis of ``scores (..., Tq, Tk)`` restricted to the keys where the
    bool ``mask (Tq, Tk)`` is True (masked keys get weight 0; a row with no visible key gets
    ``1/Tk`` everywhere, like ``masked_fill`` + ``softmax``): ``op(scores, mask) -> weights``;
    ``None`` when the kernels are not active."""
    return _make(_masked_softmax, library()) if active() else None


def fused_attention_op() -> Optional[ops.Custom]:
    """Multi-head self-attention in one operator: ``op(qkv, mask) -> (y, weights)`` with
    ``qkv (B, T, 3, H, D)`` (the fused q|k|v projection, reshaped: no copy), a bool ``mask
    (T, T)`` (True = may attend), ``y (B, T, H, D)`` and ``weights (B, H, T, T)`` (kept for the
    backward; a query that sees no key gets zero weights and a zero output). Same result as
    split + :func:`mindtf.nn.scaled_dot_product_attention` to float32 rounding, without the head
    transposes; no dropout (callers keep the built-in path when attention dropout is on). The
    gradient flows through ``y`` only. ``None`` when the kernels are not active."""
    return _make(_fused_attention, library()) if active() else None


def _init_adamw(self, lib: str) -> None:
    ops.Custom.__init__(self, f"{lib}:MindtfAdamW", out_shape=_one_element,
                        out_dtype=_float32, func_type="aot")
    self.add_prim_attr("side_effect_mem", True)


@functools.lru_cache(maxsize=16)
def _adamw(lib: str, count: int) -> ops.Custom:
    """``MindtfAdamW`` for ``count`` parameters, declared like MindSpore's ``AdamWeightDecay``:
    the params, ``m`` and ``v`` are written in place (``RW_WRITE`` + a memory side effect), so
    GRAPH_MODE orders the reads and writes of those Parameters around it."""
    sigs = tuple(sig.make_sig(f"{name}{i}", sig.sig_rw.RW_WRITE)
                 for name in ("param", "m", "v") for i in range(count))
    sigs += tuple(sig.make_sig(f"grad{i}") for i in range(count))
    sigs += (sig.make_sig("hyper"), sig.make_sig("decay"))
    cls = type(f"MindtfAdamW{count}", (ops.Custom,),
               {"__mindspore_signature__": sigs, "__init__": _init_adamw})
    return cls(lib)


@functools.lru_cache(maxsize=4)
def _sum_squares(lib: str) -> ops.Custom:
    return _custom(lib, "MindtfSumSquares", _one_element, _float32)


def sum_squares_op() -> Optional[ops.Custom]:
    """``op(g_1, ..., g_k) -> s`` of shape ``(1,)``: the sum of the squares of every element of
    every float32 tensor, in one launch (the squared global norm for gradient clipping); no
    gradient. ``None`` when the kernels are not active."""
    return _make(_sum_squares, library()) if active() else None


def adamw_op(count: int) -> Optional[ops.Custom]:
    """One AdamW step of ``count`` float32 Parameters in one launch, in place:
    ``op(*params, *ms, *vs, *grads, hyper, decay)`` with ``hyper = (lr, beta1, beta2, eps, wd,
    coef)`` (float32, ``(6,)``) and ``decay`` (float32, ``(count,)``: 1 = decay this parameter)
    updates every param, m and v with the gradient ``coef * grad`` by the formula of MindSpore's
    ``AdamWeightDecay`` and returns a token of shape ``(1,)`` to chain with ``ops.depend``.
    ``None`` when the kernels are not active."""
    return _make(lambda lib: _adamw(lib, int(count)), library()) if active() else None
