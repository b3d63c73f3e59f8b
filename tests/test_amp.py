"""Dynamic loss scaling (logic tested in fp32 on CPU) and compute-dtype selection."""
import os

os.environ.setdefault("GLOG_v", "3")

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mindspore as ms  # noqa: E402
from mindspore import Tensor, nn  # noqa: E402

import mindtf  # noqa: E402
from mindtf.training import amp  # noqa: E402
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


def test_autocast_dtype_cpu_is_fp32_with_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert autocast_dtype("cpu", "fp32") == ms.float32
        assert autocast_dtype("CPU", "auto") == ms.float32
    for req in ("fp16", "bf16", "bfloat16"):
        with pytest.warns(UserWarning, match="CPU"):
            assert autocast_dtype("cpu", req) == ms.float32
    with pytest.raises(ValueError):
        autocast_dtype("tpu", "fp16")
    with pytest.raises(ValueError):
        autocast_dtype("gpu", "fp8")


def test_autocast_dtype_accelerators(monkeypatch):
    assert autocast_dtype("gpu", "fp16") == ms.float16
    assert autocast_dtype("Ascend", "float32") == ms.float32
    # detection unknown: an explicit bf16 request is trusted, auto falls back to fp16
    monkeypatch.setattr(amp, "bf16_supported", lambda device: None)
    assert autocast_dtype("gpu", "bf16") == ms.bfloat16
    assert autocast_dtype("gpu", "auto") == ms.float16
    # known unsupported (e.g. V100, Ascend 910A): fp16 with a warning
    monkeypatch.setattr(amp, "bf16_supported", lambda device: False)
    with pytest.warns(UserWarning, match="bf16"):
        assert autocast_dtype("ascend", "bf16") == ms.float16
    monkeypatch.setattr(amp, "bf16_supported", lambda device: True)
    assert autocast_dtype("gpu", "auto") == ms.bfloat16


def test_bf16_supported_detection(monkeypatch):
    assert amp.bf16_supported("cpu") is False
    monkeypatch.setattr(amp, "_gpu_compute_capability", lambda: 7.0)
    assert amp.bf16_supported("gpu") is False
    monkeypatch.setattr(amp, "_gpu_compute_capability", lambda: 9.0)
    assert amp.bf16_supported("gpu") is True
    for soc, want in [("ascend910", False), ("ascend910b", True), ("ascend310p", False),
                      (None, None)]:
        monkeypatch.setattr(amp, "_ascend_soc", lambda soc=soc: soc)
        assert amp.bf16_supported("ascend") is want
