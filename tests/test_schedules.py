"""Learning-rate schedules: formulas at chosen steps, and agreement with torch's LambdaLR."""
import math

import numpy as np
import pytest

from mindtf.training.schedules import Constant, Noam, WarmupCosine


def test_warmup_cosine_formula():
    s = WarmupCosine(max_lr=6e-4, warmup_steps=10, total_steps=110, min_lr=6e-5)
    assert s(0) == pytest.approx(6e-4 * 1 / 10)
    assert s(4) == pytest.approx(6e-4 * 5 / 10)
    assert s(9) == pytest.approx(6e-4)           # last warmup step reaches max_lr
    assert s(10) == pytest.approx(6e-4)          # cosine starts at max_lr
    assert s(60) == pytest.approx(6e-5 + 0.5 * (6e-4 - 6e-5))  # half way: the midpoint
    r = (35 - 10) / 100
    assert s(35) == pytest.approx(6e-5 + 0.5 * (6e-4 - 6e-5) * (1 + math.cos(math.pi * r)))
    assert s(110) == pytest.approx(6e-5)
    assert s(10_000) == pytest.approx(6e-5)
    vals = s.values(200)
    assert vals.shape == (200,)
    assert np.all(np.diff(vals[:10]) > 0) and np.all(np.diff(vals[10:111]) <= 0)
    assert "cosine" in s.describe()


def test_warmup_cosine_no_warmup_and_validation():
    s = WarmupCosine(max_lr=1.0, warmup_steps=0, total_steps=4)
    want = [0.5 * (1 + math.cos(math.pi * i / 4)) for i in range(4)] + [0.0]
    np.testing.assert_allclose(s.values(5), want, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError):
        WarmupCosine(max_lr=1.0, warmup_steps=10, total_steps=5)
    with pytest.raises(ValueError):
        s(-1)


def test_noam_formula():
    s = Noam(d_model=512, warmup_steps=4000, factor=2.0)
    for step in (0, 1, 99, 3998, 3999, 4000, 20_000):
        n = step + 1
        want = 2.0 * 512 ** -0.5 * min(n ** -0.5, n * 4000 ** -1.5)
        assert s(step) == pytest.approx(want, rel=1e-12)
    peak = int(np.argmax(s.values(8000)))
    assert peak == 3999  # the peak is at (s + 1) == warmup_steps
    assert s(3999) == pytest.approx(2.0 * (512 * 4000) ** -0.5)
    assert "Noam" in s.describe()


def test_constant():
    s = Constant(3e-4)
    assert s(0) == s(12345) == 3e-4
    np.testing.assert_array_equal(s.values(3), [3e-4] * 3)
    assert s.describe() == "Constant: 0.0003"


@pytest.mark.parametrize("sched, base", [
    (WarmupCosine(max_lr=1e-3, warmup_steps=5, total_steps=30, min_lr=1e-4), 1e-3),
    (Noam(d_model=64, warmup_steps=8), 1.0),
])
def test_matches_torch_lambda_lr(sched, base):
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    lam = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: sched(s) / base)
    torch_lrs = []
    for _ in range(40):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        lam.step()
    np.testing.assert_allclose(sched.values(40), torch_lrs, rtol=1e-12, atol=0)
