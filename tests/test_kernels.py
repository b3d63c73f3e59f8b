"""mindtf.kernels: the custom CPU kernels give the built-in ops' results (forward and gradients,
GRAPH_MODE and PyNative), the compiled library is cached, and a machine without a compiler falls
back to the built-in ops with one warning.

Each comparison builds the same layer twice, with ``MINDTF_KERNELS=0`` (built-in ops) and ``1``
(the kernel), from the same weights, and compares outputs and all gradients within 1e-5.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn, ops

from mindtf.kernels import (build, compiler, fused_attention_op, gelu_tanh_op, masked_softmax_op,
                            sum_squares_op)
from mindtf.nn.attention import merge_heads, scaled_dot_product_attention, split_heads
from mindtf.nn.layers import LayerNorm, activate, gelu_tanh
from mindtf.runtime import execution_mode

REPO = Path(__file__).resolve().parent.parent
TOL = 1e-5
needs_cxx = pytest.mark.skipif(compiler() is None,
                               reason="no C++ compiler here: only the fallback path can run")


@pytest.fixture(params=["pynative", "graph"])
def mode(request, ms_cpu):
    with execution_mode(request.param):
        yield request.param


class _Grads(nn.Cell):
    """``(inputs..., sens) -> (net(inputs), (d inputs...), (d params...))``."""

    def __init__(self, net: nn.Cell):
        super().__init__()
        self.net = net
        self.params = ms.ParameterTuple(net.trainable_params())
        self.grad = ops.GradOperation(get_all=True, get_by_list=True, sens_param=True)

    def construct(self, *args):
        return self.net(*args[:-1]), self.grad(self.net, self.params)(*args)


def _run(net: nn.Cell, *inputs):
    """Forward output and every gradient (inputs, then parameters) as numpy arrays, for a
    fixed random cotangent."""
    out = net(*inputs)
    sens = Tensor(np.random.default_rng(7).standard_normal(out.shape).astype(np.float32))
    y, (d_in, d_par) = _Grads(net)(*inputs, sens)
    return [y.asnumpy()] + [g.asnumpy() for g in d_in] + [g.asnumpy() for g in d_par]


def _assert_close(got, want):
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, (i, a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL, err_msg=f"output/gradient {i}")


def _built(monkeypatch, flag: str, make):
    monkeypatch.setenv("MINDTF_KERNELS", flag)
    return make()


# --------------------------------------------------------------------------- LayerNorm
@needs_cxx
@pytest.mark.parametrize("shape", [(1, 1), (1, 130), (7, 5), (7, 128), (33, 130), (33, 1),
                                   (3, 11, 128)])
def test_layer_norm_matches_builtin(mode, monkeypatch, shape):
    d = shape[-1]
    rng = np.random.default_rng(sum(shape))
    ref = _built(monkeypatch, "0", lambda: LayerNorm(d))
    fast = _built(monkeypatch, "1", lambda: LayerNorm(d))
    assert ref.kernel is None and fast.kernel is not None
    for layer in (ref, fast):  # same non-trivial weights in both
        layer.weight.set_data(Tensor(1 + 0.1 * np.arange(d, dtype=np.float32)))
        layer.bias.set_data(Tensor(0.01 * np.arange(d, dtype=np.float32)))
    x = Tensor((3 * rng.standard_normal(shape) + 1).astype(np.float32))
    _assert_close(_run(fast, x), _run(ref, x))


@needs_cxx
def test_layer_norm_without_bias_and_names(ms_cpu, monkeypatch):
    fast = _built(monkeypatch, "1", lambda: LayerNorm(6, bias=False))
    ref = _built(monkeypatch, "0", lambda: LayerNorm(6, bias=False))
    x = Tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32))
    _assert_close(_run(fast, x), _run(ref, x))
    # the kernel changes no parameter: Hugging Face names load the same way
    assert [p.name for p in fast.get_parameters()] == [p.name for p in ref.get_parameters()]


# --------------------------------------------------------------------------- GELU (tanh)
class _Gelu(nn.Cell):
    def __init__(self, kernel):
        super().__init__()
        self.kernel = kernel

    def construct(self, h):
        return activate("gelu", h, None, None, self.kernel)


@needs_cxx
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (33, 130), (2, 3, 128)])
def test_gelu_tanh_matches_builtin(mode, monkeypatch, shape):
    kernel = _built(monkeypatch, "1", gelu_tanh_op)
    assert kernel is not None
    rng = np.random.default_rng(len(shape))
    h = 3 * rng.standard_normal(shape).astype(np.float32)
    h.flat[0], h.flat[-1] = 20.0, -20.0  # the tails, where exp leaves float range
    _assert_close(_run(_Gelu(kernel), Tensor(h)), _run(_Gelu(None), Tensor(h)))


def test_gelu_tanh_reference_formula(ms_cpu):
    h = np.linspace(-6, 6, 25, dtype=np.float32)
    want = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
    np.testing.assert_allclose(gelu_tanh(Tensor(h)).asnumpy(), want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- masked softmax
class _Attention(nn.Cell):
    def __init__(self, mask, kernel, guard: bool):
        super().__init__()
        self.mask, self.kernel, self.guard = mask, kernel, guard

    def construct(self, q, k, v):
        out, w = scaled_dot_product_attention(q, k, v, self.mask, 0.0, True, False, self.guard,
                                              self.kernel)
        return out + ops.matmul(w, v)  # both outputs feed the gradient


def _mask(kind: str, tq: int, tk: int, rng) -> np.ndarray:
    if kind == "causal":
        return np.tril(np.ones((tq, tk), bool))
    m = rng.random((tq, tk)) > 0.4
    m[0] = False  # a query that sees no key
    return m


@needs_cxx
@pytest.mark.parametrize("dims,kind", [((1, 1, 1, 2, 1), "causal"), ((2, 3, 7, 7, 5), "causal"),
                                       ((2, 1, 5, 9, 4), "random"), ((1, 2, 33, 130, 8), "random")])
@pytest.mark.parametrize("guard", [True, False])
def test_masked_softmax_matches_builtin(mode, monkeypatch, dims, kind, guard):
    b, h, tq, tk, d = dims
    kernel = _built(monkeypatch, "1", masked_softmax_op)
    assert kernel is not None
    rng = np.random.default_rng(tq * tk)
    mask = Tensor(_mask(kind, tq, tk, rng))
    q = Tensor(rng.standard_normal((b, h, tq, d)).astype(np.float32))
    k = Tensor(rng.standard_normal((b, h, tk, d)).astype(np.float32))
    v = Tensor(rng.standard_normal((b, h, tk, d)).astype(np.float32))
    _assert_close(_run(_Attention(mask, kernel, guard), q, k, v),
                  _run(_Attention(mask, None, guard), q, k, v))


@needs_cxx
def test_masked_softmax_single_key(mode, monkeypatch):
    """One key (T_k = 1): weight 1, ``out = v``. Checked against the closed form, not the built-in
    path: in MindSpore 2.10 PyNative, the gradient of ``ops.softmax`` over an axis of length 1
    leaves later softmax gradients of other shapes wrong for the rest of the process."""
    kernel = _built(monkeypatch, "1", masked_softmax_op)
    rng = np.random.default_rng(5)
    q, k, v = (Tensor(rng.standard_normal((2, 3, 1, 4)).astype(np.float32)) for _ in range(3))
    y, dq, dk, dv = _run(_Attention(Tensor(np.ones((1, 1), bool)), kernel, True), q, k, v)
    sens = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
    _assert_close([y, dq, dk, dv], [2 * v.asnumpy(), 0 * dq, 0 * dk, 2 * sens])


@needs_cxx
def test_softmax_kernel_skips_broadcast_masks(ms_cpu, monkeypatch):
    """A padding mask (B, 1, 1, Tk) is not the kernel's (Tq, Tk) layout: the built-in path runs."""
    kernel = _built(monkeypatch, "1", masked_softmax_op)
    rng = np.random.default_rng(3)
    q = Tensor(rng.standard_normal((2, 2, 4, 8)).astype(np.float32))
    mask = Tensor(np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool).reshape(2, 1, 1, 4))
    got = scaled_dot_product_attention(q, q, q, mask, softmax_kernel=kernel)
    want = scaled_dot_product_attention(q, q, q, mask)
    np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), rtol=TOL, atol=TOL)


# --------------------------------------------------------------------- fused attention
class _SplitAttention(nn.Cell):
    """``qkv (B, T, 3C) -> y (B, T, C)``: split, heads, attention, merge (the built-in path),
    or the same through the fused kernel."""

    def __init__(self, mask, heads: int, fused):
        super().__init__()
        self.mask, self.heads, self.fused = mask, heads, fused

    def construct(self, qkv):
        b, t, c3 = qkv.shape
        c = c3 // 3
        if self.fused is not None:
            y, _ = self.fused(qkv.reshape(b, t, 3, self.heads, c // self.heads), self.mask)
            return y.reshape(b, t, c)
        q, k, v = (split_heads(z, self.heads) for z in ops.split(qkv, c, axis=2))
        return merge_heads(scaled_dot_product_attention(q, k, v, self.mask))


# T >= 2 only: the built-in softmax gradient over a length-1 axis breaks later ones in PyNative
# (see test_masked_softmax_single_key)
@needs_cxx
@pytest.mark.parametrize("dims,kind", [((1, 2, 1, 1), "causal"), ((2, 7, 3, 5), "causal"),
                                       ((3, 33, 2, 8), "causal"), ((2, 9, 2, 3), "random"),
                                       ((1, 19, 3, 20), "random"), ((2, 33, 2, 17), "causal"),
                                       ((1, 64, 4, 32), "causal")])
def test_fused_attention_matches_builtin(mode, monkeypatch, dims, kind):
    """Outputs and d qkv equal split + heads + masked softmax attention + merge (a query that
    sees no key: zero output and zero gradient, as the guarded built-in path)."""
    b, t, h, d = dims
    fused = _built(monkeypatch, "1", fused_attention_op)
    assert fused is not None
    rng = np.random.default_rng(t * h + d)
    mask = Tensor(_mask(kind, t, t, rng))
    qkv = Tensor(rng.standard_normal((b, t, 3 * h * d)).astype(np.float32))
    _assert_close(_run(_SplitAttention(mask, h, fused), qkv),
                  _run(_SplitAttention(mask, h, None), qkv))


@needs_cxx
def test_fused_attention_weights_are_softmax(ms_cpu, monkeypatch):
    """The second output holds the attention weights: rows sum to 1, 0 above the diagonal."""
    fused = _built(monkeypatch, "1", fused_attention_op)
    rng = np.random.default_rng(1)
    qkv = Tensor(rng.standard_normal((2, 6, 3, 2, 4)).astype(np.float32))
    _, w = fused(qkv, Tensor(np.tril(np.ones((6, 6), bool))))
    w = w.asnumpy()
    assert w.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    assert np.all(np.triu(w, 1) == 0)


@needs_cxx
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_gpt_with_fused_attention_matches_builtin(mode, monkeypatch, dropout):
    """A GPT built with the kernels (fused attention when dropout is off, in training) gives
    the built-in model's logits and parameter gradients; with attention dropout, or with the
    attention weights asked for, it keeps the built-in attention."""
    from mindtf.models.gpt import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=29, block_size=12, n_layer=2, n_head=2, n_embd=16,
                    dropout=dropout)
    ref = _built(monkeypatch, "0", lambda: GPT(cfg))
    got = _built(monkeypatch, "1", lambda: GPT(cfg))
    assert got.h[0].attn.fused_kernel is not None
    ms.load_param_into_net(got, {p.name: ms.Parameter(p.asnumpy(), p.name)
                                 for p in ref.get_parameters()})
    for net in (ref, got):
        net.set_train(dropout == 0.0)  # dropout on: compare in eval mode (no randomness)
    idx = Tensor(np.random.default_rng(2).integers(0, 29, (3, 12)).astype(np.int32))
    _assert_close(_run(got, idx), _run(ref, idx))
    logits, weights = got(idx, return_attention=True)
    assert len(weights) == 2 and weights[0].shape == (3, 2, 12, 12)


# ----------------------------------------------------------------- switch, cache, fallback
def test_switch_off_and_unknown_values(ms_cpu, monkeypatch):
    monkeypatch.setenv("MINDTF_KERNELS", "0")
    assert LayerNorm(4).kernel is None and gelu_tanh_op() is None
    monkeypatch.setenv("MINDTF_KERNELS", "sometimes")
    with pytest.warns(build.KernelWarning, match="not one of 0, 1, auto"):
        assert build.switch() == "auto"


@needs_cxx
def test_library_is_cached_and_reused(ms_cpu, monkeypatch, tmp_path):
    monkeypatch.setenv("MINDTF_KERNEL_CACHE", str(tmp_path))
    build.library.cache_clear()
    try:
        first = build.library()  # compiles into the empty cache
        assert first is not None and Path(first).parent.parent == tmp_path
        stamp = os.stat(first).st_mtime_ns
        build.library.cache_clear()
        monkeypatch.setattr(build, "_compile", lambda *a: pytest.fail("compiled a second time"))
        assert build.library() == first
        assert os.stat(first).st_mtime_ns == stamp
        assert not list(tmp_path.rglob("*.tmp"))  # no temporary file left behind
    finally:
        build.library.cache_clear()


@needs_cxx
def test_two_processes_build_once(tmp_path):
    """Two processes that need the library at the same moment: one compiles (under the lock),
    the other waits and loads the same file; no temporary file is left."""
    log = tmp_path / "compiles.log"
    cxx = tmp_path / "cxx"
    cxx.write_text(f'#!/bin/sh\ncase " $* " in *" -o "*) echo x >> "{log}";; esac\n'
                   f'exec "{compiler()}" "$@"\n')
    cxx.chmod(0o755)
    env = dict(os.environ, MINDTF_CXX=str(cxx), MINDTF_KERNEL_CACHE=str(tmp_path / "cache"),
               GLOG_v="3")
    code = "from mindtf.kernels.build import library; print(library())"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(paths) == 1 and Path(paths.pop()).is_file()
    assert log.read_text().count("x") == 1  # compiled once
    assert not list((tmp_path / "cache").rglob("*.tmp"))


FALLBACK = textwrap.dedent("""
    import json, warnings
    import numpy as np
    import mindtf
    from mindspore import Tensor
    from mindtf.kernels import KernelWarning
    from mindtf.models.gpt import GPT, GPTConfig
    from mindtf.nn.layers import LayerNorm
    mindtf.setup(device="cpu", mode="pynative", seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        norms = [LayerNorm(8) for _ in range(3)]
        model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8))
        x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
        y = norms[0](Tensor(x)).asnumpy()
        logits = model(Tensor(np.arange(6, dtype=np.int32).reshape(1, 6))).asnumpy()
        from mindtf.training.optim import AdamW
        opt = AdamW(model.trainable_params())
    mine = [str(w.message) for w in caught if issubclass(w.category, KernelWarning)]
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    print(json.dumps({"warnings": mine, "err": float(np.abs(y - want).max()),
                      "kernels": [n.kernel is not None for n in norms + [opt]],
                      "finite": bool(np.isfinite(logits).all())}))
""")


def test_without_a_compiler_falls_back_with_one_warning(tmp_path):
    env = dict(os.environ, MINDTF_CXX=str(tmp_path / "no-such-c++"),
               MINDTF_KERNEL_CACHE=str(tmp_path / "cache"), MINDTF_KERNELS="auto", GLOG_v="3")
    proc = subprocess.run([sys.executable, "-c", FALLBACK], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(res["warnings"]) == 1, res["warnings"]
    assert "no C++ compiler found" in res["warnings"][0] and "MINDTF_CXX" in res["warnings"][0]
    assert res["kernels"] == [False, False, False, False]
    assert res["err"] < 1e-5 and res["finite"]
    assert not (tmp_path / "cache").exists()  # nothing was built


# ------------------------------------------------------- optimiser: global norm, clip + AdamW
@needs_cxx
def test_sum_squares_matches_numpy(mode, monkeypatch):
    op = _built(monkeypatch, "1", sum_squares_op)
    assert op is not None
    rng = np.random.default_rng(11)
    # odd sizes, a scalar-like tensor, and enough elements in all to use two threads
    arrays = [rng.standard_normal(s).astype(np.float32)
              for s in [(1,), (7, 5), (3, 11, 13), (300_001,), (129,)]]
    got = float(op(*[Tensor(a) for a in arrays]).asnumpy()[0])
    want = sum(float((a.astype(np.float64) ** 2).sum()) for a in arrays)
    assert abs(got - want) <= 1e-6 * want


def _train(monkeypatch, flag: str, mode: str, steps: int = 5):
    """``steps`` steps of a tiny GPT (kernels off in the model; ``flag`` for the optimiser):
    the losses, norms and final parameters and moments."""
    from mindtf.training.losses import LMLossCell
    from mindtf.training.optim import AdamW, decay_mask_for
    from mindtf.training.step import TrainStep
    from mindtf.models.gpt import GPT, GPTConfig

    monkeypatch.setenv("MINDTF_KERNELS", "0")
    np.random.seed(3)
    # no biases: the key bias has a zero gradient (softmax ignores a shift), so there Adam turns
    # float rounding noise into steps of up to lr and the two paths drift apart by ~1e-5
    model = GPT(GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=32,
                          dropout=0.0, bias=False))
    params = model.trainable_params()
    monkeypatch.setenv("MINDTF_KERNELS", flag)
    opt = AdamW(params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1,
                decay_mask=decay_mask_for([(p.name, p) for p in params]))
    assert (opt.kernel is not None) == (flag == "1")
    step = TrainStep(LMLossCell(model), opt, grad_clip=0.5)
    rng = np.random.default_rng(0)
    trace = []
    for _ in range(steps):
        x, y = (Tensor(rng.integers(0, 37, (1, 4, 16)).astype(np.int32)) for _ in range(2))
        loss, norm, ok = step(Tensor(1e-2, ms.float32), x, y)
        assert bool(ok.asnumpy())
        trace.append((float(loss.asnumpy()), float(norm.asnumpy())))
    state = [p.asnumpy().copy() for p in (*params, *opt.exp_avg, *opt.exp_avg_sq)]
    return trace, state


@needs_cxx
def test_clip_and_adamw_kernels_train_like_builtin(mode, monkeypatch):
    """5 steps with clipping active (norm > 0.5) and weight decay on the matrices: the fused
    norm + clip + AdamW kernels give the built-in path's losses, norms, parameters and moments."""
    trace_ref, state_ref = _train(monkeypatch, "0", mode)
    trace, state = _train(monkeypatch, "1", mode)
    assert all(n > 0.5 for _, n in trace_ref)  # the clipping factor is < 1 in every step
    np.testing.assert_allclose(trace, trace_ref, rtol=1e-5, atol=1e-6)
    _assert_close(state, state_ref)
