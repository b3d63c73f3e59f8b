"""The MatMul roofline of a training step: how fast could it be if MatMul were the only cost?

::

    step_matmul_flops(cfg)      analytic: forward 2*M*N*K per matmul (attention's scores and
                                weighted sums included, full T x T), backward 2x the forward
    measure_mindspore(m, k, n)  MindSpore's MatMul GFLOP/s: 8 independent (m,k)x(k,n) MatMuls in
                                one compiled cell (the ~0.25 ms graph-call overhead amortised)
    measure_torch(m, k, n)      the same with torch.mm (for comparison only)
    roofline(...)               min step = step FLOPs / MatMul rate -> max tokens/s, and how
                                close each framework's measured median step comes to it

The representative shape is the first feed-forward MatMul of the config:
``(tokens per step, width) x (width, ffn width)`` -- e.g. ``(768, 128) x (128, 512)`` for nano.
"""
from __future__ import annotations

import statistics
import time

N_PARALLEL = 8  # MatMuls per compiled call


def matmul_shape(cfg: dict) -> tuple:
    """``(M, K, N)`` of the config's representative MatMul (the first feed-forward one)."""
    if cfg["kind"] == "seq2seq":
        return cfg["batch_size"] * cfg["tgt_len"], cfg["d_model"], cfg["d_ff"]
    return cfg["batch_size"] * cfg["block_size"], cfg["n_embd"], 4 * cfg["n_embd"]


def step_matmul_flops(cfg: dict) -> dict:
    """MatMul FLOPs of one training step: ``{"forward", "backward", "total", "parts"}``."""
    if cfg["kind"] == "seq2seq":
        b, s, t = cfg["batch_size"], cfg["src_len"], cfg["tgt_len"]
        d, f, v = cfg["d_model"], cfg["d_ff"], cfg["tgt_vocab_size"]
        enc = (2 * b * s * d * d * 4          # q, k, v, out projections
               + 2 * b * s * s * d * 2        # scores q k^T and weights @ v (all heads)
               + 2 * b * s * d * f * 2)       # feed-forward
        dec = (2 * b * t * d * d * 4 + 2 * b * t * t * d * 2      # self-attention
               + 2 * b * t * d * d * 2 + 2 * b * s * d * d * 2    # cross: q, out on T; k, v on S
               + 2 * b * t * s * d * 2                            # cross scores + weighted sum
               + 2 * b * t * d * f * 2)                           # feed-forward
        parts = {"encoder": cfg["n_encoder_layers"] * enc, "decoder": cfg["n_decoder_layers"] * dec,
                 "output_projection": 2 * b * t * d * v}
    else:
        n, c, t = cfg["batch_size"] * cfg["block_size"], cfg["n_embd"], cfg["block_size"]
        layer = 2 * n * c * 12 * c + 2 * n * t * c * 2  # qkv + proj + mlp (12 C^2), attention
        parts = {"blocks": cfg["n_layer"] * layer, "lm_head": 2 * n * c * cfg["vocab_size"]}
    fwd = sum(parts.values())
    return {"forward": fwd, "backward": 2 * fwd, "total": 3 * fwd, "parts": parts}


def _reps(m: int, k: int, n: int) -> int:
    flop = 2 * m * k * n * N_PARALLEL
    return max(3, min(20, int(2e10 / max(flop, 1))))


def measure_mindspore(m: int, k: int, n: int, seed: int = 0) -> dict:
    """MindSpore MatMul GFLOP/s in a compiled cell (call after ``mindtf.setup``: threads and
    mode as the benchmark's)."""
    import numpy as np
    from mindspore import Tensor, nn, ops

    class ParallelMatMul(nn.Cell):
        def construct(self, a, b0, b1, b2, b3, b4, b5, b6, b7):
            return (ops.matmul(a, b0), ops.matmul(a, b1), ops.matmul(a, b2), ops.matmul(a, b3),
                    ops.matmul(a, b4), ops.matmul(a, b5), ops.matmul(a, b6), ops.matmul(a, b7))

    rng = np.random.default_rng(seed)
    a = Tensor(rng.standard_normal((m, k), dtype=np.float32))
    bs = [Tensor(rng.standard_normal((k, n), dtype=np.float32)) for _ in range(N_PARALLEL)]
    cell = ParallelMatMul()

    def call() -> float:
        t0 = time.perf_counter()
        out = cell(a, *bs)
        out[0].asnumpy(), out[-1].asnumpy()  # waits for the graph
        return time.perf_counter() - t0

    call()  # compiles
    times = [call() for _ in range(_reps(m, k, n))]
    per = statistics.median(times) / N_PARALLEL
    return {"shape": [m, k, n], "median_s": per, "gflops": 2 * m * k * n / per / 1e9,
            "calls": len(times), "matmuls_per_call": N_PARALLEL}


def measure_torch(m: int, k: int, n: int, seed: int = 0) -> dict:
    """``torch.mm`` GFLOP/s for the same shape (eager, the torch worker's threads)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    a = torch.randn(m, k, generator=g)
    b = torch.randn(k, n, generator=g)
    torch.mm(a, b)
    times = []
    for _ in range(_reps(m, k, n)):
        t0 = time.perf_counter()
        for _ in range(N_PARALLEL):
            torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    per = statistics.median(times) / N_PARALLEL
    return {"shape": [m, k, n], "median_s": per, "gflops": 2 * m * k * n / per / 1e9,
            "calls": len(times), "matmuls_per_call": N_PARALLEL}


def roofline(flops: dict, gflops: float, tokens_per_step: int, median_step_s: dict) -> dict:
    """The fastest step if MatMul were the only cost, and each framework's share of it
    (``fraction_of_roofline`` = min step / measured median step; 1.0 = at the roofline)."""
    min_step = flops["total"] / (gflops * 1e9)
    return {"matmul_gflop_per_step": flops["total"] / 1e9,
            "matmul_gflop_parts_forward": {k: v / 1e9 for k, v in flops["parts"].items()},
            "mindspore_matmul_gflops": gflops,
            "min_step_s": min_step,
            "max_tokens_per_s": tokens_per_step / min_step,
            "fraction_of_roofline": {fw: min_step / s for fw, s in median_step_s.items()}}
