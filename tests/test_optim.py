"""AdamW, gradient clipping and finiteness checks against PyTorch, in PyNative and GRAPH_MODE."""
import os

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mindspore as ms  # noqa: E402
from mindspore import Parameter, Tensor, nn  # noqa: E402

import mindtf  # noqa: E402
from mindtf.training.optim import AdamW, all_finite, clip_by_global_norm, decay_mask_for  # noqa: E402

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def pynative():
    mindtf.setup(device="cpu", mode="pynative", seed=0)
    yield



SHAPES = [(4, 3), (3,), (2, 5)]
MASK = [True, False, True]  # the bias (index 1) is not decayed


def _lr(step: int) -> float:
    return 1e-2 * (0.5 + 0.5 * np.cos(np.pi * step / 100)) + 1e-4


def _torch_adamw(init, mask, wd, **kw):
    tparams = [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]
    groups = [{"params": [p for p, m in zip(tparams, mask) if m], "weight_decay": wd},
              {"params": [p for p, m in zip(tparams, mask) if not m], "weight_decay": 0.0}]
    return tparams, torch.optim.AdamW(groups, lr=1e-3, **kw)


def test_adamw_matches_torch_100_steps_pynative():
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    params = [Parameter(Tensor(a.copy()), name=f"p{i}") for i, a in enumerate(init)]
    opt = AdamW(params, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, decay_mask=MASK)
    tparams, topt = _torch_adamw(init, MASK, 0.1, betas=(0.9, 0.95), eps=1e-8)
    for step in range(100):
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        lr = _lr(step)
        opt(tuple(Tensor(g) for g in grads), Tensor(lr, ms.float32))
        for p, g in zip(tparams, grads):
            p.grad = torch.tensor(g)
        for group in topt.param_groups:
            group["lr"] = lr
        topt.step()
    assert int(opt.step.asnumpy()) == 100
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.asnumpy(), tp.detach().numpy(), rtol=0, atol=1e-5)
    # the moments match torch's state too
    for i, tp in enumerate(tparams):
        st = topt.state[tp]
        np.testing.assert_allclose(opt.exp_avg[i].asnumpy(), st["exp_avg"].numpy(), atol=1e-6)
        np.testing.assert_allclose(opt.exp_avg_sq[i].asnumpy(), st["exp_avg_sq"].numpy(),
                                   atol=1e-6)


class _TrainStep(nn.Cell):
    """loss + grads of a tiny linear model, clipping, and one AdamW update: one compiled graph."""

    def __init__(self, model, optimizer, max_norm):
        super().__init__(auto_prefix=False)
        self.model = model
        self.optimizer = optimizer
        self.max_norm = max_norm
        self.grad_fn = ms.value_and_grad(self.forward, None, optimizer.params)

    def forward(self, x, y):
        return ((self.model(x) - y) ** 2).mean()

    def construct(self, x, y, lr):
        loss, grads = self.grad_fn(x, y)
        grads, norm = clip_by_global_norm(grads, self.max_norm)
        step = self.optimizer(grads, lr)
        return loss, norm, step


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_adamw_inside_train_step_matches_torch(mode, request):
    if mode == "graph":
        request.getfixturevalue("graph_mode")
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    model = nn.Dense(4, 3)
    model.weight.set_data(Tensor(w))
    model.bias.set_data(Tensor(b))
    mask = decay_mask_for(model.parameters_and_names())
    assert mask == [True, False]
    opt = AdamW(model.trainable_params(), lr=1e-3, weight_decay=0.1, decay_mask=mask)
    train_step = _TrainStep(model, opt, max_norm=0.5)
    # names are kept (no "optimizer." prefix), so checkpoints of model and optimizer agree
    assert model.weight.name == "weight"
    assert {p.name for p in opt.state_params()} == {
        "adamw.step", "adamw.exp_avg.weight", "adamw.exp_avg.bias",
        "adamw.exp_avg_sq.weight", "adamw.exp_avg_sq.bias"}

    tmodel = torch.nn.Linear(4, 3)
    with torch.no_grad():
        tmodel.weight.copy_(torch.tensor(w))
        tmodel.bias.copy_(torch.tensor(b))
    topt = torch.optim.AdamW([{"params": [tmodel.weight], "weight_decay": 0.1},
                              {"params": [tmodel.bias], "weight_decay": 0.0}], lr=1e-3)
    for step in range(20):
        x = rng.standard_normal((8, 4)).astype(np.float32)
        y = rng.standard_normal((8, 3)).astype(np.float32)
        lr = 1e-2 / (step + 1)
        loss, norm, n = train_step(Tensor(x), Tensor(y), Tensor(lr, ms.float32))
        topt.zero_grad()
        tloss = ((tmodel(torch.tensor(x)) - torch.tensor(y)) ** 2).mean()
        tloss.backward()
        tnorm = torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 0.5)
        for group in topt.param_groups:
            group["lr"] = lr
        topt.step()
        assert abs(float(loss.asnumpy()) - tloss.item()) < 1e-5
        assert abs(float(norm.asnumpy()) - tnorm.item()) < 1e-5
        assert int(n.asnumpy()) == step + 1
    np.testing.assert_allclose(model.weight.asnumpy(), tmodel.weight.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(model.bias.asnumpy(), tmodel.bias.detach().numpy(), atol=1e-5)


def test_adamw_zero_weight_decay_and_default_lr():
    rng = np.random.default_rng(2)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    params = [Parameter(Tensor(a.copy()), name=f"q{i}") for i, a in enumerate(init)]
    opt = AdamW(params, lr=3e-3, weight_decay=0.0)
    tparams, topt = _torch_adamw(init, [True] * 3, 0.0)
    for group in topt.param_groups:
        group["lr"] = 3e-3
    for _ in range(5):
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        opt(tuple(Tensor(g) for g in grads))  # lr=None: the constructor's lr
        for p, g in zip(tparams, grads):
            p.grad = torch.tensor(g)
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.asnumpy(), tp.detach().numpy(), atol=1e-6)


def test_adamw_state_dict_roundtrip_and_checkpoint(tmp_path):
    rng = np.random.default_rng(3)
    params = [Parameter(Tensor(rng.standard_normal(s).astype(np.float32)), name=f"r{i}")
              for i, s in enumerate(SHAPES)]
    opt = AdamW(params, weight_decay=0.1, decay_mask=MASK)
    for _ in range(3):
        opt(tuple(Tensor(rng.standard_normal(s).astype(np.float32)) for s in SHAPES),
            Tensor(1e-2, ms.float32))
    state = opt.state_dict()
    assert int(state["adamw.step"]) == 3
    assert all(isinstance(v, np.ndarray) for v in state.values())
    np.savez(str(tmp_path / "opt.npz"), **state)

    fresh = AdamW(params, weight_decay=0.1, decay_mask=MASK)
    fresh.load_state_dict(state)
    assert int(fresh.step.asnumpy()) == 3
    for a, b in zip(opt.exp_avg_sq, fresh.exp_avg_sq):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())

    # the state is made of named Parameters, so MindSpore's own checkpoints carry it
    path = str(tmp_path / "opt.ckpt")
    ms.save_checkpoint(opt.state_params(), path)
    loaded = ms.load_checkpoint(path)
    assert set(loaded) == {p.name for p in opt.state_params()}
    with pytest.raises(KeyError):
        fresh.load_state_dict({"adamw.step": np.array(1, np.int32)})


def test_adamw_rejects_bad_arguments():
    p = Parameter(Tensor(np.zeros((2, 2), np.float32)), name="z")
    with pytest.raises(ValueError):
        AdamW([])
    with pytest.raises(ValueError):
        AdamW([p], decay_mask=[True, False])
    with pytest.raises(ValueError):
        AdamW([p], betas=(1.0, 0.9))


def test_decay_mask_for_gpt_like_names():
    def par(shape):
        return Parameter(Tensor(np.zeros(shape, np.float32)))

    named = [
        ("wte.embedding_table", par((10, 4))),
        ("wpe.embedding_table", par((8, 4))),
        ("blocks.0.ln_1.gamma", par((4,))),
        ("blocks.0.attn.c_attn.weight", par((12, 4))),
        ("blocks.0.attn.c_attn.bias", par((12,))),
        ("blocks.0.norm2.weight", par((4, 4))),      # 2-D but a norm: no decay
        ("blocks.0.mlp.c_fc.weight", par((16, 4))),
        ("encoder.embed_tokens.weight", par((10, 4))),
        ("ln_f.beta", par((4,))),
        ("lm_head.weight", par((10, 4))),
        ("layernorm.weight", par((4, 4))),
        ("scalar_gain", par(())),
        ("blocks.1.attn_ln.weight", par((4, 4))),
        ("blocks.1.linear.weight", par((4, 4))),     # "linear" is not "ln..."
    ]
    assert decay_mask_for(named) == [False, False, False, True, False, False, True, False, False,
                                     True, False, False, False, True]
    # plain Parameters work too (their .name is used)
    assert decay_mask_for([Parameter(Tensor(np.zeros((2, 2), np.float32)), name="fc.weight"),
                           Parameter(Tensor(np.zeros(2, np.float32)), name="fc.bias")]) == [
        True, False]


def test_adamw_fp16_param_keeps_dtype_and_fp32_moments():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((3, 3)).astype(np.float32)
    p16 = Parameter(Tensor(w.astype(np.float16)), name="h")
    p32 = Parameter(Tensor(w.astype(np.float16).astype(np.float32)), name="f")
    o16, o32 = AdamW([p16], weight_decay=0.1), AdamW([p32], weight_decay=0.1)
    for _ in range(3):
        g = rng.standard_normal((3, 3)).astype(np.float32)
        o16((Tensor(g.astype(np.float16)),), Tensor(1e-2, ms.float32))
        o32((Tensor(g.astype(np.float16).astype(np.float32)),), Tensor(1e-2, ms.float32))
    assert p16.dtype == ms.float16 and o16.exp_avg[0].dtype == ms.float32
    np.testing.assert_allclose(p16.asnumpy().astype(np.float32), p32.asnumpy(), atol=3e-3)


def _grads(rng):
    return [rng.standard_normal(s).astype(np.float32) * 3 for s in SHAPES]


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_by_global_norm_matches_torch(max_norm):
    rng = np.random.default_rng(4)
    grads = _grads(rng)
    clipped, norm = clip_by_global_norm(tuple(Tensor(g) for g in grads), max_norm)
    tparams = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
    for p, g in zip(tparams, grads):
        p.grad = torch.tensor(g)
    tnorm = torch.nn.utils.clip_grad_norm_(tparams, max_norm)
    assert abs(float(norm.asnumpy()) - tnorm.item()) < 1e-5
    for c, p in zip(clipped, tparams):
        np.testing.assert_allclose(c.asnumpy(), p.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_clip_disabled_and_non_finite():
    rng = np.random.default_rng(5)
    grads = tuple(Tensor(g) for g in _grads(rng))
    for off in (None, 0.0, -1.0):
        out, norm = clip_by_global_norm(grads, off)
        assert np.isfinite(float(norm.asnumpy()))
        for a, b in zip(out, grads):
            np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    bad = list(_grads(rng))
    bad[1][0] = np.inf
    out, norm = clip_by_global_norm(tuple(Tensor(g) for g in bad), 1.0)
    assert not np.isfinite(float(norm.asnumpy()))
    np.testing.assert_array_equal(out[0].asnumpy(), bad[0])  # returned unscaled, not NaN-ed
    assert not bool(all_finite(tuple(Tensor(g) for g in bad)).asnumpy())
    assert bool(all_finite(grads).asnumpy())
    bad[2][1, 1] = np.nan
    bad[1][0] = 0.0
    assert not bool(all_finite(tuple(Tensor(g) for g in bad)).asnumpy())


class _ClipCell(nn.Cell):
    def construct(self, a, b, c):
        grads, norm = clip_by_global_norm((a, b, c), 1.0)
        return grads, norm, all_finite(grads)


def test_clip_and_all_finite_in_graph_mode(graph_mode):
    rng = np.random.default_rng(6)
    grads = _grads(rng)
    (ca, cb, cc), norm, finite = _ClipCell()(*(Tensor(g) for g in grads))
    expected_norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads))
    assert abs(float(norm.asnumpy()) - expected_norm) < 1e-4
    coef = 1.0 / (expected_norm + 1e-6)
    np.testing.assert_allclose(ca.asnumpy(), grads[0] * coef, rtol=1e-5, atol=1e-6)
    assert bool(finite.asnumpy())
    grads[0][0, 0] = np.nan
    _, norm, finite = _ClipCell()(*(Tensor(g) for g in grads))
    assert not bool(finite.asnumpy()) and np.isnan(float(norm.asnumpy()))
