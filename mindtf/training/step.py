"""One compiled training step (loss + gradients + AdamW update) and the evaluation pass.

The step is an ``nn.Cell``. In GRAPH_MODE MindSpore compiles its ``construct`` -- forward,
backward, clipping, NaN guard and optimiser update -- into one graph, which removes the per-op
Python overhead that dominates small models on a CPU. In PyNative mode the *same* cell runs op by
op, so you can step through it in a debugger or a notebook. The mode is a switch
(``TrainConfig.mode``), not a second copy of the code.

::

    lr (host schedule) ─┐
    batch (A, B, T) ────┴─> TrainStep: for each of A micro-batches: loss, grads = value_and_grad
                            grads = sum / A; [N workers: loss, grads = AllReduce / N]
                            clip by global norm; if finite: AdamW(grads, lr)
                            [CPU kernels: norm in one launch, clip inside AdamW's update]
                            -> (loss, grad_norm, finite)

With several workers (:mod:`mindtf.distributed`), :class:`WorkerMean` averages the loss and the
gradients over them inside the same compiled graph, before clipping and the NaN guard, so every
worker takes the same decision and applies the same update.
"""
from __future__ import annotations

import itertools
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from mindtf.distributed import World, all_reduce_sums, shard_items, world
from mindtf.errors import ConfigError
from mindtf.metrics import TokenLossMeter
from mindtf.precision import needs_loss_scaling, resolve_precision
from mindtf.training.amp import DynamicLossScaler, set_compute_dtype
from mindtf.training.config import TrainConfig
from mindtf.training.optim import (AdamW, clip_by_global_norm, clip_coef, decay_mask_for,
                                   global_norm)

__all__ = ["TrainStep", "EvalStep", "WorkerMean", "build_train_step", "evaluate", "to_tensors"]


class WorkerMean(nn.Cell):
    """``(loss, grads) -> (loss, grads)`` averaged over the ``size`` workers of a data-parallel
    run: MindSpore's :class:`~mindspore.nn.DistributedGradReducer` for the gradients (fused
    AllReduce, then / size) and one AllReduce for the loss."""

    def __init__(self, params, size: int):
        super().__init__(auto_prefix=False)
        self.grads = nn.DistributedGradReducer(params, mean=True, degree=size)
        self.sum = ops.AllReduce()
        self.inv_size = 1.0 / size

    def construct(self, loss, grads):
        return self.sum(loss) * self.inv_size, self.grads(grads)


class TrainStep(nn.Cell):
    """One optimiser step: gradients of ``A`` micro-batches, averaged, clipped, NaN-guarded,
    applied.

    ``construct(lr, *batch)``: ``lr`` is a float32 scalar Tensor from the host schedule; each
    batch tensor has a leading micro-batch axis ``(A, B, ...)``. Dividing the summed gradients
    by ``A`` is the same as dividing each micro-batch loss by ``A``, so 4 micro-batches of 8 give
    the gradient of one batch of 32. Returns ``(mean loss, global grad norm, finite)``; when not
    finite the update is skipped (AdamW's moments and step are untouched). ``reducer``: a
    :class:`WorkerMean` in a data-parallel run (the loss and gradients become the workers' mean).
    """

    def __init__(self, net_with_loss: nn.Cell, optimizer: AdamW, grad_clip: float = 1.0,
                 accum: int = 1, loss_scaler=None, reducer: Optional[WorkerMean] = None):
        super().__init__(auto_prefix=False)
        self.net = net_with_loss
        self.optimizer = optimizer
        self.weights = optimizer.params
        self.accum = int(accum)
        self.grad_clip = float(grad_clip) if grad_clip else 0.0
        self.scaler = loss_scaler
        self.reducer = reducer
        self.grad_fn = ms.value_and_grad(self._scaled_loss, None, self.weights)
        # mindtf's CPU kernels: one launch for the norm, the clipping inside AdamW's update
        self.norm_kernel = getattr(optimizer, "norm_kernel", None)
        self.fold_clip = self.norm_kernel is not None

    def _scaled_loss(self, *batch):
        loss = self.net(*batch)
        if self.scaler is not None:
            loss = self.scaler.scale_loss(loss)
        return loss

    def construct(self, lr: Tensor, *batch):
        loss, grads = self.grad_fn(*[b[0] for b in batch])
        for i in range(1, self.accum):  # unrolled at compile time
            loss_i, grads_i = self.grad_fn(*[b[i] for b in batch])
            loss = loss + loss_i
            grads = tuple(g + gi for g, gi in zip(grads, grads_i))
        if self.accum > 1:
            loss = loss / self.accum
            grads = tuple(g / self.accum for g in grads)
        if self.reducer is not None:
            loss, grads = self.reducer(loss, grads)
        if self.scaler is not None:
            loss = self.scaler.unscale((loss,))[0]
            grads = self.scaler.unscale(grads)
        # the global norm is finite exactly when every gradient element is
        if self.fold_clip:
            norm = global_norm(grads, self.norm_kernel)
            coef = clip_coef(norm, self.grad_clip)
        else:
            grads, norm = clip_by_global_norm(grads, self.grad_clip)
            coef = None
        finite = ops.logical_and(ops.isfinite(norm), ops.isfinite(loss))
        if self.scaler is not None:
            self.scaler.update(finite)
        if finite:
            self.optimizer(grads, lr, coef)
        return loss, norm, finite


def build_train_step(model: nn.Cell, net_with_loss: nn.Cell, config: TrainConfig) -> TrainStep:
    """The standard step for ``config``: AdamW over ``model``'s trainable parameters (no decay on
    biases, norms and embeddings), clipping, accumulation; ``config.precision`` resolved for the
    device (``step.precision``: fp32, fp16 or bf16) and applied to ``model``
    (:func:`~mindtf.training.amp.set_compute_dtype`), with dynamic loss scaling for fp16
    (``step.scaler``); in a data-parallel run (:func:`mindtf.distributed.world` has several workers)
    the workers' mean of the loss and gradients. The optimiser is ``step.optimizer``."""
    params = model.trainable_params()
    optimizer = AdamW(params, lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps,
                      weight_decay=config.weight_decay,
                      decay_mask=decay_mask_for([(p.name, p) for p in params]))
    try:
        precision = resolve_precision(config.precision, ms.get_context("device_target"))
    except ValueError as exc:
        raise ConfigError(f"train.precision={config.precision!r}: {exc}") from None
    if precision != "fp32":  # an fp32 model is left exactly as it was
        set_compute_dtype(model, precision)
    scaler = None
    if needs_loss_scaling(precision):
        scaler = DynamicLossScaler(init_scale=config.loss_scale_init,
                                   growth_interval=config.loss_scale_window)
    size = world().size
    reducer = WorkerMean(params, size) if size > 1 else None
    step = TrainStep(net_with_loss, optimizer, config.grad_clip, config.grad_accum, scaler,
                     reducer)
    step.precision = precision
    return step


class EvalStep(nn.Cell):
    """``(*batch) -> (sum of token losses, token count)`` with the model in eval mode."""

    def __init__(self, net_with_loss: nn.Cell):
        super().__init__(auto_prefix=False)
        self.net = net_with_loss

    def construct(self, *batch):
        return self.net.sums(*batch)


def to_tensors(arrays: Sequence[np.ndarray]) -> List[Tensor]:
    """numpy batch arrays -> contiguous Tensors (the step's inputs)."""
    return [Tensor(np.ascontiguousarray(a)) for a in arrays]


def evaluate(eval_step: EvalStep, batches: Iterable[Tuple[np.ndarray, ...]],
             max_batches: Optional[int] = None, workers: Optional[World] = None
             ) -> Dict[str, float]:
    """Token-weighted mean loss and perplexity over ``batches`` (all of them unless
    ``max_batches``): ``{"loss", "ppl", "tokens"}``. With ``workers`` (a data-parallel run)
    this worker scores every N-th batch and the loss sums and token counts are summed over the
    workers: every batch is scored once, and every worker returns the same result."""
    meter = TokenLossMeter()
    eval_step.set_train(False)
    workers = workers or World()
    chosen = itertools.islice(batches, max_batches)  # the first max_batches (None: all)
    for batch in shard_items(chosen, workers):
        total, count = eval_step(*to_tensors(batch))
        meter.update(total, int(round(float(count.asnumpy()))), reduction="sum")
    if workers.size > 1:
        total, count = all_reduce_sums([meter.total_loss, meter.total_tokens], workers)
        meter.total_loss, meter.total_tokens = total, int(round(count))
    if meter.total_tokens == 0:
        return {"loss": float("nan"), "ppl": float("nan"), "tokens": 0}
    return {"loss": meter.mean_loss, "ppl": meter.perplexity, "tokens": meter.total_tokens}
