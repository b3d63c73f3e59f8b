"""Dynamic loss scaling (logic tested in fp32 on CPU) and compute-dtype selection."""
import os

os.environ.setdefault("GLOG_v", "3")

import json  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mindspore as ms  # noqa: E402
from mindspore import Tensor, nn  # noqa: E402

import mindtf  # noqa: E402
from mindtf import precision  # noqa: E402
from mindtf.training import amp  # noqa: E402
from mindtf.training.losses import LMLossCell  # noqa: E402
from mindtf.training.trainer import Trainer  # noqa: E402
from mindtf.training.amp import DynamicLossScaler, autocast_dtype  # noqa: E402
from mindtf.training.optim import AdamW, all_finite  # noqa: E402


@pytest.fixture(autouse=True)
def pynative():
    mindtf.setup(device="cpu", mode="pynative", seed=0)
    yield



def _scale(s):
    return float(s.scale.asnumpy())


def test_scale_and_unscale_roundtrip():
    s = DynamicLossScaler()
    assert _scale(s) == 2.0 ** 16
    loss = Tensor(0.75, ms.float32)
    assert float(s.scale_loss(loss).asnumpy()) == 0.75 * 2 ** 16
    assert float(s(Tensor(0.5, ms.float16)).asnumpy()) == 0.5 * 2 ** 16  # no fp16 overflow
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(sh).astype(np.float32) for sh in [(3, 4), (4,)]]
    scaled = tuple(Tensor(g * 2 ** 16) for g in grads)
    for got, want in zip(s.unscale(scaled), grads):
        np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-6)


def test_overflow_backs_off_and_growth_after_interval():
    s = DynamicLossScaler(init_scale=1024.0, growth_interval=3)
    ok, bad = Tensor(True), Tensor(False)
    overflowing = (Tensor(np.array([1.0, np.inf], np.float32)),)
    finite = all_finite(s.unscale(overflowing))
    assert not bool(finite.asnumpy())  # overflow is reported as non-finite
    s.update(finite)
    assert _scale(s) == 512.0 and int(s.good_steps.asnumpy()) == 0
    s.update(ok)
    s.update(ok)
    assert _scale(s) == 512.0 and int(s.good_steps.asnumpy()) == 2
    s.update(bad)  # an overflow resets the counter
    assert _scale(s) == 256.0 and int(s.good_steps.asnumpy()) == 0
    for _ in range(3):
        s.update(ok)
    assert _scale(s) == 512.0 and int(s.good_steps.asnumpy()) == 0  # grew after 3 good steps
    tiny = DynamicLossScaler(init_scale=2.0, min_scale=1.0)
    for _ in range(3):
        tiny.update(bad)
    assert _scale(tiny) == 1.0


class _AmpStep(nn.Cell):
    """Scaled loss -> grads -> unscale -> finiteness check -> update scale -> maybe step."""

    def __init__(self, model, optimizer, scaler):
        super().__init__(auto_prefix=False)
        self.model = model
        self.optimizer = optimizer
        self.scaler = scaler
        self.grad_fn = ms.value_and_grad(self.forward, None, optimizer.params)

    def forward(self, x, y):
        return self.scaler.scale_loss(((self.model(x) - y) ** 2).mean())

    def construct(self, x, y, lr):
        loss, grads = self.grad_fn(x, y)
        grads = self.scaler.unscale(grads)
        finite = all_finite(grads)
        self.scaler.update(finite)
        if finite:
            self.optimizer(grads, lr)
        return loss, finite


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_amp_train_step_skips_overflow(mode, request):
    if mode == "graph":
        request.getfixturevalue("graph_mode")
    model = nn.Dense(4, 2)
    opt = AdamW(model.trainable_params(), weight_decay=0.0)
    scaler = DynamicLossScaler(init_scale=256.0, growth_interval=2)
    step = _AmpStep(model, opt, scaler)
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((8, 4)).astype(np.float32))
    y = Tensor(rng.standard_normal((8, 2)).astype(np.float32))
    lr = Tensor(1e-2, ms.float32)
    w0 = model.weight.asnumpy().copy()

    _, finite = step(x, y, lr)
    assert bool(finite.asnumpy()) and int(opt.step.asnumpy()) == 1
    assert not np.allclose(model.weight.asnumpy(), w0)
    _, finite = step(x, y, lr)  # second good step: the scale grows
    assert _scale(scaler) == 512.0

    w1 = model.weight.asnumpy().copy()
    bad_x = x.asnumpy().copy()
    bad_x[0, 0] = np.inf
    _, finite = step(Tensor(bad_x), y, lr)
    assert not bool(finite.asnumpy())
    assert _scale(scaler) == 256.0                       # backed off
    assert int(opt.step.asnumpy()) == 2                  # update skipped
    np.testing.assert_array_equal(model.weight.asnumpy(), w1)
    assert np.all(np.isfinite(opt.exp_avg[0].asnumpy()))


def test_autocast_dtype_cpu():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert autocast_dtype("cpu", "fp32") == ms.float32
        assert autocast_dtype("CPU", "auto") == ms.float32
        assert autocast_dtype("cpu", "float16") == ms.float16  # MindSpore has fp16 CPU kernels
    for req in ("bf16", "bfloat16"):
        with pytest.raises(ValueError, match="bf16 on CPU.*Use fp32, or fp16"):
            autocast_dtype("cpu", req)
    with pytest.raises(ValueError):
        autocast_dtype("tpu", "fp16")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        autocast_dtype("gpu", "fp8")


def test_autocast_dtype_accelerators(monkeypatch):
    assert autocast_dtype("gpu", "fp16") == ms.float16
    assert autocast_dtype("Ascend", "float32") == ms.float32
    # detection unknown: an explicit bf16 request is trusted, auto falls back to fp16
    monkeypatch.setattr(precision, "bf16_supported", lambda device: None)
    assert autocast_dtype("gpu", "bf16") == ms.bfloat16
    assert autocast_dtype("gpu", "auto") == ms.float16
    # known unsupported (e.g. V100, Ascend 910A): an error that names the fix
    monkeypatch.setattr(precision, "bf16_supported", lambda device: False)
    with pytest.raises(ValueError, match="bf16 on ASCEND.*fp16"):
        autocast_dtype("ascend", "bf16")
    assert autocast_dtype("ascend", "auto") == ms.float16
    monkeypatch.setattr(precision, "bf16_supported", lambda device: True)
    assert autocast_dtype("gpu", "auto") == ms.bfloat16


def test_bf16_supported_detection(monkeypatch):
    assert precision.bf16_supported("cpu") is False
    assert amp.bf16_supported is precision.bf16_supported  # one rule, re-exported
    monkeypatch.setattr(precision, "_gpu_compute_capability", lambda: 7.0)
    assert precision.bf16_supported("gpu") is False
    monkeypatch.setattr(precision, "_gpu_compute_capability", lambda: 9.0)
    assert precision.bf16_supported("gpu") is True
    for soc, want in [("ascend910", False), ("ascend910b", True), ("ascend310p", False),
                      (None, None)]:
        monkeypatch.setattr(precision, "_ascend_soc", lambda soc=soc: soc)
        assert precision.bf16_supported("ascend") is want


def test_setup_reports_what_auto_means(ms_cpu):
    info = mindtf.setup(device="cpu", mode="pynative", seed=0)
    assert info.precision == "fp32" and "precision(auto)=fp32" in str(info)


# --------------------------------------------------------------------------- fp16 on the CPU
def _tiny_gpt(seed=0):
    np.random.seed(seed)
    return mindtf.GPT(mindtf.GPTConfig(vocab_size=29, block_size=16, n_layer=1, n_head=2,
                                       n_embd=32, dropout=0.0))


def _batch(seed=0, rows=4):
    x = np.random.default_rng(seed).integers(0, 29, (rows, 17)).astype(np.int32)
    return x[:, :-1], x[:, 1:]


def test_set_compute_dtype_keeps_fp32_weights_and_norms():
    model = _tiny_gpt()
    x, _ = _batch()
    ref = model(Tensor(x)).asnumpy()
    amp.set_compute_dtype(model, "fp16")
    out = model(Tensor(x))
    assert out.dtype == ms.float16
    np.testing.assert_allclose(out.asnumpy().astype(np.float32), ref, atol=2e-2)
    assert all(p.dtype == ms.float32 for p in model.get_parameters())  # master weights
    norms = [c for _, c in model.cells_and_names() if isinstance(c, amp.NORM_LAYERS)]
    assert norms and all(c.get_mixed_precision_type().name == "FP32" for c in norms)
    amp.set_compute_dtype(model, "fp32")  # undone: float32 again
    np.testing.assert_allclose(model(Tensor(x)).asnumpy(), ref, atol=1e-6)


def _config(tmp_path, **kw):
    base = dict(max_steps=6, batch_size=4, lr=1e-3, warmup_steps=0, schedule="constant",
                mode="pynative", precision="fp16", out_dir=str(tmp_path), progress=False,
                eval_interval=1000, log_interval=1)
    return mindtf.TrainConfig(**{**base, **kw})


class _Batches:
    def __init__(self):
        self.i = 0

    def next(self):
        self.i += 1
        return _batch(self.i)

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, state):
        self.i = state["i"]


def test_fp16_training_on_cpu_follows_fp32_and_grows_the_scale(tmp_path):
    """The whole fp16 path runs on the CPU: fp16 compute, scaled loss, unscaled fp32 gradients,
    AdamW on fp32 master weights. Its losses stay within fp16 rounding of the fp32 run's."""
    losses = {}
    for prec in ("fp32", "fp16"):
        model = _tiny_gpt()
        cfg = _config(tmp_path / prec, precision=prec, loss_scale_init=1024.0,
                      loss_scale_window=2)
        trainer = Trainer(model, LMLossCell(model), cfg, _Batches())
        outs = [trainer.train_one_step() for _ in range(6)]
        losses[prec] = [o["loss"] for o in outs]
        if prec == "fp16":
            assert trainer.step_cell.precision == "fp16"
            assert [o["loss_scale"] for o in outs] == [1024, 2048, 2048, 4096, 4096, 8192]
            assert all(o["finite"] for o in outs) and trainer.overflows == 0
        else:
            assert trainer.step_cell.scaler is None and "loss_scale" not in outs[0]
    np.testing.assert_allclose(losses["fp16"], losses["fp32"], atol=5e-3)
    assert losses["fp16"][-1] < losses["fp16"][0]


def test_fp16_overflow_halves_the_scale_without_a_warning_and_resumes(tmp_path):
    """A loss scale far too large makes the fp16 gradients overflow: those steps are skipped and
    the scale halved, silently (no bad-step warning, max_bad_steps not involved); the scale is
    saved with the checkpoint and resumed; after fit() the model decodes in float32."""
    model = _tiny_gpt()
    cfg = _config(tmp_path, loss_scale_init=2.0**24, max_bad_steps=1, max_steps=8)
    trainer = Trainer(model, LMLossCell(model), cfg, _Batches())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow is not a bad step
        summary = trainer.fit()
    assert summary["precision"] == "fp16" and 1 <= summary["overflows"] < 8
    scale = float(trainer.step_cell.scaler.scale.asnumpy())
    assert scale == 2.0 ** 24 / 2 ** summary["overflows"]
    rows = [json.loads(r) for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss_scale"] == scale and rows[-1]["overflows"] == summary["overflows"]
    out = mindtf.generate(model, np.array([[1, 2]], np.int32), 3, temperature=0)  # fp32 again
    assert out.shape == (1, 5)

    again = Trainer(_tiny_gpt(1), LMLossCell(model), cfg, _Batches())
    assert again.resume() == 8
    assert float(again.step_cell.scaler.scale.asnumpy()) == scale
    assert again.overflows == summary["overflows"]


def test_precision_settings_are_checked(tmp_path):
    from mindtf.errors import ConfigError

    with pytest.raises(ConfigError, match="precision"):
        _config(tmp_path, precision="fp8")
    with pytest.raises(ConfigError, match="loss_scale_window"):
        _config(tmp_path, loss_scale_window=0)
    with pytest.raises(ConfigError, match="loss_scale_init"):
        _config(tmp_path, loss_scale_init=0.5)
    assert _config(tmp_path, precision="auto").precision == "auto"
    model = _tiny_gpt()
    with pytest.raises(ConfigError, match="train.precision='bf16'.*no bf16"):
        mindtf.build_train_step(model, LMLossCell(model), _config(tmp_path, precision="bf16"))
    step = mindtf.build_train_step(model, LMLossCell(model), _config(tmp_path, precision="auto"))
    assert step.precision == "fp32" and step.scaler is None  # auto on a CPU
