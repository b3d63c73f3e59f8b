"""Optimisation pieces for a compiled training step: AdamW, gradient clipping, finiteness checks.

Everything here can be called from inside an ``nn.Cell.construct`` compiled in GRAPH_MODE as well as
eagerly in PyNative mode. The intended use is one cell that does the whole step::

    class TrainStep(nn.Cell):
        def __init__(self, model, loss_fn, optimizer, max_norm=1.0):
            super().__init__(auto_prefix=False)   # keep the model's parameter names
            self.model, self.loss_fn = model, loss_fn
            self.optimizer, self.max_norm = optimizer, max_norm
            self.grad_fn = ms.value_and_grad(self.forward, None, optimizer.params)

        def forward(self, x, y):
            return self.loss_fn(self.model(x), y)

        def construct(self, x, y, lr):          # lr: float32 scalar Tensor from a schedule
            loss, grads = self.grad_fn(x, y)
            grads, norm = clip_by_global_norm(grads, self.max_norm)
            self.optimizer(grads, lr)
            return loss, norm

The learning rate is a Tensor *input* rather than state inside the graph: the host evaluates the
schedule (``mindtf.training.schedules``) each step, and one compiled graph serves every step.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional, Sequence

import numpy as np

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops
from mindspore.common import dtype as mstype
from mindspore.ops import operations as P

from mindtf.kernels import adamw_op, sum_squares_op

__all__ = ["AdamW", "decay_mask_for", "clip_by_global_norm", "clip_coef", "global_norm",
           "all_finite"]

#: Name fragments of parameters that never get weight decay (besides anything with ndim < 2).
_NO_DECAY_PREFIXES = ("ln", "wte", "wpe")          # ln_1, ln_f, ln1, wte, wpe ...
_NO_DECAY_SUBSTRINGS = ("norm", "embed", "bias")  # layernorm, rmsnorm, embedding_table, bias


def decay_mask_for(named_params: Iterable) -> list:
    """Which parameters get weight decay: only weight matrices of Dense/Conv1D-like layers.

    A parameter is *not* decayed when any of these holds:

    * ``ndim < 2`` (biases, LayerNorm/RMSNorm gains and shifts, scalars);
    * a part of its name (split at ``.``, ``_`` and ``/``) starts with ``ln`` (``ln_1``, ``ln_f``,
      ``attn_ln``), ``wte`` or ``wpe``, or contains ``norm`` (``layernorm``, ``rmsnorm``),
      ``embed`` (``embedding_table``, ``embed_tokens``) or ``bias``.

    Args:
        named_params: ``(name, Parameter)`` pairs (e.g. ``cell.parameters_and_names()``) or plain
            Parameters (their ``.name`` is used).

    Returns:
        One bool per parameter, in order: ``True`` = apply weight decay.
    """
    mask = []
    for item in named_params:
        if isinstance(item, tuple):
            name, param = item
        else:
            name, param = item.name, item
        if len(param.shape) < 2:
            mask.append(False)
            continue
        parts = re.split(r"[./_]", name.lower())  # "blocks.0.ln_1.gamma" -> [..., "ln", "1", ...]
        skip = any(part.startswith(_NO_DECAY_PREFIXES)
                   or any(s in part for s in _NO_DECAY_SUBSTRINGS) for part in parts)
        mask.append(not skip)
    return mask


# ``HyperMap`` applies a Python function to every element of one or more tuples. Compiled, it is
# specialised per element shape/dtype like an unrolled loop, but it compiles several times faster
# than a Python ``for`` loop over ~100 parameters (measured: 0.8 s vs 8 s on CPU).
_map = ops.HyperMap()


def _sum_of_squares(g: Tensor) -> Tensor:
    g32 = ops.cast(g, mstype.float32)
    return ops.sum(g32 * g32)


def _is_all_finite(g: Tensor) -> Tensor:
    return ops.isfinite(g).all()


def _scale(coef: Tensor, g: Tensor) -> Tensor:
    return g * ops.cast(coef, g.dtype)


def global_norm(grads: Sequence[Tensor], kernel=None) -> Tensor:
    """The L2 norm of all gradients together, ``sqrt(sum_i ||g_i||^2)``: a float32 Tensor of
    shape ``()``, ``inf``/``nan`` if any gradient is. ``grads``: Tensors of any shapes and float
    dtypes. ``kernel``: ``None`` (built-in ops: a Mul and a ReduceSum per gradient) or
    :func:`mindtf.kernels.sum_squares_op` (one launch for all of them; float32 only)."""
    if kernel is not None:
        return ops.sqrt(ops.reshape(kernel(*grads), ()))
    return ops.sqrt(ops.addn(_map(_sum_of_squares, tuple(grads))))


def clip_coef(norm: Tensor, max_norm: Optional[float]) -> Tensor:
    """The factor :func:`clip_by_global_norm` scales the gradients by: ``min(1, max_norm /
    (norm + 1e-6))``, and 1 when ``max_norm`` is ``None``/``<= 0`` or the norm is not finite."""
    if max_norm is None or max_norm <= 0:
        return ops.ones_like(norm)
    coef = ops.clamp(max_norm / (norm + 1e-6), max=1.0)
    return ops.select(ops.isfinite(norm), coef, ops.ones_like(coef))  # don't zero/NaN the grads


def clip_by_global_norm(grads: Sequence[Tensor], max_norm: Optional[float]) -> tuple:
    """Scale ``grads`` so their global L2 norm is at most ``max_norm`` (``clip_grad_norm_``).

    Same formula as ``torch.nn.utils.clip_grad_norm_``::

        norm  = sqrt(sum_i ||g_i||^2)
        coef  = min(1, max_norm / (norm + 1e-6))
        g_i  <- coef * g_i

    Args:
        grads: tuple of gradient Tensors (any shapes).
        max_norm: Python float (a compile-time constant in GRAPH_MODE). ``None`` or ``<= 0``
            disables clipping (the norm is still computed and returned, for logging).

    Returns:
        ``(clipped_grads, norm)``: a tuple like ``grads`` and the float32 scalar norm *before*
        clipping. If the norm is ``inf``/``nan`` the gradients are returned unscaled together with
        that norm, so the caller can detect it (``ops.isfinite(norm)``) and skip the step.
    """
    grads = tuple(grads)
    norm = global_norm(grads)
    if max_norm is None or max_norm <= 0:
        return grads, norm
    return _map(ops.partial(_scale, clip_coef(norm, max_norm)), grads), norm


def all_finite(grads: Sequence[Tensor]) -> Tensor:
    """``True`` (bool Tensor of shape ``()``) if every element of every gradient is finite."""
    flags = _map(_is_all_finite, tuple(grads))
    return ops.stack(flags).all()


def _adamw_update(beta1: float, beta2: float, eps: float, step_size: Tensor,
                  bias_c2_sqrt: Tensor, decay_factor: Tensor, decay: bool, param: Parameter,
                  exp_avg: Parameter, exp_avg_sq: Parameter, grad: Tensor) -> Tensor:
    """One AdamW update of one parameter, in place. See :class:`AdamW` for the formula.

    The first six arguments are shared by all parameters (bound with ``ops.partial``); the last
    five come one per parameter from the tuples mapped over. ``decay`` is a Python bool, so the
    ``if`` is resolved at compile time.
    """
    g = ops.cast(grad, mstype.float32)
    p = ops.cast(param, mstype.float32)
    if decay:
        p = p * decay_factor                                    # decoupled weight decay
    m = exp_avg + (1.0 - beta1) * (g - exp_avg)                 # = b1*m + (1-b1)*g  (torch's lerp)
    v = beta2 * exp_avg_sq + (1.0 - beta2) * (g * g)
    denom = ops.sqrt(v) / bias_c2_sqrt + eps                    # sqrt(v^) + eps
    p = p - step_size * (m / denom)                             # step_size = lr / (1 - b1^t)
    ops.assign(exp_avg, m)
    ops.assign(exp_avg_sq, v)
    ops.assign(param, ops.cast(p, param.dtype))
    return True


_fused_adamw = P.AdamWeightDecay()


def _adamw_fused_update(beta1: Tensor, beta2: Tensor, eps: Tensor, lr: Tensor, wd: Tensor,
                        zero: Tensor, decay: bool, param: Parameter, exp_avg: Parameter,
                        exp_avg_sq: Parameter, grad: Tensor) -> Tensor:
    """The same update as :func:`_adamw_update` with MindSpore's fused ``AdamWeightDecay``
    kernel (one kernel per parameter instead of about a dozen element-wise ops).

    That kernel has no bias correction; :meth:`AdamW.construct` folds it into the scalars it
    passes (``lr``, ``eps`` and ``wd`` here are the corrected ones), which is exact algebra.
    """
    return _fused_adamw(param, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, wd if decay else zero,
                        ops.cast(grad, mstype.float32))


class AdamW(nn.Cell):
    """AdamW with bias correction and decoupled weight decay, as in ``torch.optim.AdamW``.

    One call of the cell performs one optimisation step, updating parameters and state in place.
    For parameter ``p`` with gradient ``g`` at step ``t`` (1-based) and learning rate ``lr``::

        p   <- p - lr * wd * p                 (only where decay_mask is True)
        m   <- b1 * m + (1 - b1) * g
        v   <- b2 * v + (1 - b2) * g^2
        m^  =  m / (1 - b1^t)
        v^  =  v / (1 - b2^t)
        p   <- p - lr * m^ / (sqrt(v^) + eps)

    Moments are kept in float32 whatever the parameter dtype (the update is computed in float32 and
    cast back), which keeps fp16 parameters usable.

    **State** (all ``mindspore.Parameter``, so ``cell.parameters_and_names()`` and MindSpore
    checkpoints find them; names never collide with model parameters). ``ms.save_checkpoint(
    train_step_cell, path)`` saves model and optimiser together; ``opt.state_params()`` is the
    optimiser state alone:

    * ``exp_avg``: ParameterTuple, one per parameter, named ``adamw.exp_avg.<param name>``;
    * ``exp_avg_sq``: ParameterTuple, named ``adamw.exp_avg_sq.<param name>``;
    * ``step``: int32 scalar named ``adamw.step`` (number of updates done so far).

    :meth:`state_dict` / :meth:`load_state_dict` move that state to and from numpy arrays.

    **Parameter names.** MindSpore renames a child cell's parameters to ``<attr>.<name>`` when the
    parent cell was built with ``auto_prefix=True`` (the default). For an optimiser that would also
    rename the *model's* parameters it holds, so this class ignores such renaming (see
    :meth:`update_parameters_name`). Build your train-step cell with
    ``super().__init__(auto_prefix=False)`` too (as ``nn.TrainOneStepCell`` does), otherwise
    ``self.model = model`` renames the model's parameters to ``model.<name>``.

    Args:
        params: the parameters to optimise (e.g. ``model.trainable_params()``).
        lr: default learning rate, used when ``construct`` gets ``lr=None``.
        betas: ``(b1, b2)``.
        eps: added to ``sqrt(v^)``.
        weight_decay: decoupled weight-decay coefficient ``wd``.
        decay_mask: one bool per parameter (``True`` = decay); ``None`` decays every parameter,
            like torch. Use :func:`decay_mask_for` for the usual GPT rule.
        fused: the bias correction folded into a fused kernel's scalars: mindtf's CPU kernel
            when :func:`mindtf.kernels.active` (one launch for all parameters, the clipping factor
            applied inside), else MindSpore's ``AdamWeightDecay`` per parameter; ``False`` runs the
            formula above op by op (readable, the same numbers up to float rounding). Either way
            the moments are float32.
    """

    def __init__(self, params: Sequence[Parameter], lr: float = 1e-3,
                 betas: tuple = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01,
                 decay_mask: Optional[Sequence[bool]] = None, fused: bool = True) -> None:
        # like MindSpore's own optimisers; see also update_parameters_name below
        super().__init__(auto_prefix=False)
        params = list(params)
        if not params:
            raise ValueError("AdamW got an empty parameter list.")
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"betas must be in [0, 1), got {betas}.")
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"lr, eps and weight_decay must be >= 0 (got {lr}, {eps}, "
                             f"{weight_decay}).")
        if decay_mask is None:
            decay_mask = [True] * len(params)
        if len(decay_mask) != len(params):
            raise ValueError(f"decay_mask has {len(decay_mask)} entries for {len(params)} params.")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError("AdamW needs uniquely named parameters (state is keyed by name).")

        self.params = ParameterTuple(params)
        self.exp_avg = ParameterTuple([
            Parameter(Tensor(np.zeros(p.shape, np.float32)), name=f"adamw.exp_avg.{p.name}",
                      requires_grad=False) for p in params])
        self.exp_avg_sq = ParameterTuple([
            Parameter(Tensor(np.zeros(p.shape, np.float32)), name=f"adamw.exp_avg_sq.{p.name}",
                      requires_grad=False) for p in params])
        self.step = Parameter(Tensor(0, mstype.int32), name="adamw.step", requires_grad=False)

        self.lr = float(lr)
        self.beta1 = float(betas[0])
        self.beta2 = float(betas[1])
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.decay_mask = tuple(bool(d) for d in decay_mask)
        # per-parameter Python bools: compile-time constants inside the graph
        self.decay_flags = tuple(d and self.weight_decay != 0.0 for d in self.decay_mask)
        self.num_params = len(params)
        # the fused kernel updates float32 parameters in place; others take the op-by-op path
        self.fused = bool(fused) and all(p.dtype == mstype.float32 for p in params)
        # mindtf's CPU kernels (None elsewhere): the update, and the global norm for TrainStep
        self.kernel = adamw_op(len(params)) if self.fused else None
        self.kernel_decay = Tensor(np.array(self.decay_flags, np.float32))  # (P,) 1 = decay
        self.norm_kernel = sum_squares_op() if self.kernel is not None else None

    def construct(self, grads: tuple, lr: Optional[Tensor] = None,
                  grad_scale: Optional[Tensor] = None) -> Tensor:
        """Apply one update.

        Args:
            grads: tuple of gradients, same order and shapes as ``params``.
            lr: float32 scalar Tensor (shape ``()``). Pass a Tensor, not a Python float, to a
                compiled step, otherwise every new value is a new constant and recompiles.
                ``None`` uses the ``lr`` given to the constructor.
            grad_scale: float32 scalar Tensor the gradients are multiplied by first (the
                clipping factor, :func:`clip_coef`); with mindtf's CPU kernel inside the update.

        Returns:
            The new step count (int32 Tensor of shape ``()``), after all updates.
        """
        if lr is None:
            lr = self.lr
        if not isinstance(lr, Tensor):
            lr = Tensor(lr, mstype.float32)
        lr = ops.cast(lr, mstype.float32)
        if grad_scale is not None and self.kernel is None:
            grads = _map(ops.partial(_scale, grad_scale), tuple(grads))
        step = self.step + 1
        ops.assign(self.step, step)
        t = ops.cast(step, mstype.float32)
        # bias corrections 1 - b^t (float32 scalars), and torch's step size / denominator split
        bias_c1 = 1.0 - ops.pow(ops.full((), self.beta1, dtype=mstype.float32), t)
        bias_c2 = 1.0 - ops.pow(ops.full((), self.beta2, dtype=mstype.float32), t)
        step_size = lr / bias_c1
        bias_c2_sqrt = ops.sqrt(bias_c2)
        if self.fused:
            # torch:  p <- p(1 - lr wd) - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
            # kernel: p <- p - lr' (m / (sqrt(v) + eps') + wd' p)
            # equal with lr' = lr sqrt(bc2) / bc1, eps' = eps sqrt(bc2), wd' = wd lr / lr'
            lr_k = step_size * bias_c2_sqrt
            eps_k = self.eps * bias_c2_sqrt
            wd_k = self.weight_decay * lr / lr_k
            f32 = mstype.float32
            if self.kernel is not None:  # (lr, b1, b2, eps, wd, clip factor) as one (6,) tensor
                b1, b2 = ops.full((), self.beta1, dtype=f32), ops.full((), self.beta2, dtype=f32)
                coef = ops.ones((), f32) if grad_scale is None else ops.cast(grad_scale, f32)
                hyper = ops.stack([lr_k, b1, b2, eps_k, wd_k, coef])
                state = self.params + self.exp_avg + self.exp_avg_sq  # all of them, one launch
                done = self.kernel(*(state + tuple(grads)), hyper, self.kernel_decay)
                return ops.depend(step, done)
            done = _map(ops.partial(_adamw_fused_update, ops.full((), self.beta1, dtype=f32),
                                    ops.full((), self.beta2, dtype=f32), eps_k, lr_k, wd_k,
                                    ops.zeros((), f32)),
                        self.decay_flags, self.params, self.exp_avg, self.exp_avg_sq, tuple(grads))
            return ops.depend(step, done)
        # with weight_decay == 0 every decay flag is False, so no multiply is compiled at all
        decay_factor = 1.0 - lr * self.weight_decay
        done = _map(ops.partial(_adamw_update, self.beta1, self.beta2, self.eps, step_size,
                                bias_c2_sqrt, decay_factor),
                    self.decay_flags, self.params, self.exp_avg, self.exp_avg_sq, tuple(grads))
        return ops.depend(step, done)

    def update_parameters_name(self, prefix: str = "", recurse: bool = True) -> None:
        """Keep all names unchanged (called by MindSpore when a parent cell adopts this one).

        The parameters held here belong to the model (and their state is keyed by those names),
        so a parent's ``auto_prefix`` must not rename them to ``<attr>.weight``.
        """
        return None

    # ------------------------------------------------------------------ checkpoints (host side)
    def state_dict(self) -> dict:
        """The optimiser state as numpy arrays, keyed by the state parameter names.

        Keys: ``"adamw.step"`` and ``"adamw.exp_avg.<name>"`` / ``"adamw.exp_avg_sq.<name>"``
        for each parameter; values are numpy arrays, so ``np.savez(path, **opt.state_dict())``
        or safetensors can store it. Hyper-parameters are not included (they are constructor
        arguments, usually kept in the run's config).
        """
        out = {"adamw.step": self.step.asnumpy().copy()}
        for par in (*self.exp_avg, *self.exp_avg_sq):
            out[par.name] = par.asnumpy().copy()
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Restore state written by :meth:`state_dict` (or read back from a checkpoint file).

        Args:
            state: name -> array (numpy or Tensor); other keys are ignored.
            strict: raise ``KeyError`` when a state entry is missing.
        """
        for par in (self.step, *self.exp_avg, *self.exp_avg_sq):
            if par.name not in state:
                if strict:
                    raise KeyError(f"optimizer state {par.name!r} missing from state dict")
                continue
            value = state[par.name]
            value = value.asnumpy() if isinstance(value, Tensor) else np.asarray(value)
            if tuple(value.shape) != tuple(par.shape):
                raise ValueError(f"{par.name}: shape {value.shape} != expected {par.shape}")
            par.set_data(Tensor(value.astype(ms.dtype_to_nptype(par.dtype))))

    def state_params(self) -> list:
        """All state Parameters (``step``, ``exp_avg``, ``exp_avg_sq``), e.g. to checkpoint."""
        return [self.step, *self.exp_avg, *self.exp_avg_sq]

    def extend_repr(self) -> str:
        return (f"params={self.num_params}, lr={self.lr}, betas=({self.beta1}, {self.beta2}), "
                f"eps={self.eps}, weight_decay={self.weight_decay}, "
                f"decayed={sum(self.decay_mask)}/{self.num_params}")

