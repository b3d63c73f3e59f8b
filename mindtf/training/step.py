"""One compiled training step (loss + gradients + AdamW update) and the evaluation pass.

The step is an ``nn.Cell``. In GRAPH_MODE MindSpore compiles its ``construct`` -- forward,
backward, clipping, NaN guard and optimiser update -- into one graph, which removes the per-op
Python overhead that dominates small models on a CPU. In PyNative mode the *same* cell runs op by
op, so you can step through it in a debugger or a notebook. The mode is a switch
(``TrainConfig.mode``), not a second copy of the code.

::

    lr (host schedule) ─┐
    batch (A, B, T) ────┴─> TrainStep: for each of A micro-batches: loss, grads = value_and_grad
                            grads = sum / A; clip by global norm; if finite: AdamW(grads, lr)
                            -> (loss, grad_norm, finite)
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn, ops

from mindtf.metrics import TokenLossMeter
from mindtf.training.amp import DynamicLossScaler
from mindtf.training.config import TrainConfig
from mindtf.training.optim import AdamW, clip_by_global_norm, decay_mask_for

__all__ = ["TrainStep", "EvalStep", "build_train_step", "evaluate", "to_tensors"]


class TrainStep(nn.Cell):
    """One optimiser step: gradients of ``A`` micro-batches, averaged, clipped, NaN-guarded,
    applied.

    ``construct(lr, *batch)``: ``lr`` is a float32 scalar Tensor from the host schedule; each
    batch tensor has a leading micro-batch axis ``(A, B, ...)``. Dividing the summed gradients
    by ``A`` is the same as dividing each micro-batch loss by ``A``, so 4 micro-batches of 8 give
    the gradient of one batch of 32. Returns ``(mean loss, global grad norm, finite)``; when not
    finite the update is skipped (AdamW's moments and step are untouched).
    """

    def __init__(self, net_with_loss: nn.Cell, optimizer: AdamW, grad_clip: float = 1.0,
                 accum: int = 1, loss_scaler=None):
        super().__init__(auto_prefix=False)
        self.net = net_with_loss
        self.optimizer = optimizer
        self.weights = optimizer.params
        self.accum = int(accum)
        self.grad_clip = float(grad_clip) if grad_clip else 0.0
        self.scaler = loss_scaler
        self.grad_fn = ms.value_and_grad(self._scaled_loss, None, self.weights)

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
        if self.scaler is not None:
            loss = self.scaler.unscale((loss,))[0]
            grads = self.scaler.unscale(grads)
        # the global norm is finite exactly when every gradient element is
        grads, norm = clip_by_global_norm(grads, self.grad_clip)
        finite = ops.logical_and(ops.isfinite(norm), ops.isfinite(loss))
        if self.scaler is not None:
            self.scaler.update(finite)
        if finite:
            self.optimizer(grads, lr)
        return loss, norm, finite


def build_train_step(model: nn.Cell, net_with_loss: nn.Cell, config: TrainConfig) -> TrainStep:
    """The standard step for ``config``: AdamW over ``model``'s trainable parameters (no decay on
    biases, norms and embeddings), clipping, accumulation and, for fp16 on GPU/Ascend, dynamic
    loss scaling. The optimiser is ``step.optimizer``."""
    params = model.trainable_params()
    optimizer = AdamW(params, lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps,
                      weight_decay=config.weight_decay,
                      decay_mask=decay_mask_for([(p.name, p) for p in params]))
    scaler = None
    if config.precision == "fp16" and ms.get_context("device_target") != "CPU":
        scaler = DynamicLossScaler()
    return TrainStep(net_with_loss, optimizer, config.grad_clip, config.grad_accum, scaler)


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
             max_batches: Optional[int] = None) -> Dict[str, float]:
    """Token-weighted mean loss and perplexity over ``batches`` (all of them unless
    ``max_batches``): ``{"loss", "ppl", "tokens"}``."""
    meter = TokenLossMeter()
    eval_step.set_train(False)
    for i, batch in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        total, count = eval_step(*to_tensors(batch))
        meter.update(total, int(round(float(count.asnumpy()))), reduction="sum")
    if meter.total_tokens == 0:
        return {"loss": float("nan"), "ppl": float("nan"), "tokens": 0}
    return {"loss": meter.mean_loss, "ppl": meter.perplexity, "tokens": meter.total_tokens}
