"""cross_entropy against torch.nn.functional.cross_entropy, in PyNative and GRAPH_MODE."""
import os

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mindspore as ms  # noqa: E402
from mindspore import Tensor, nn  # noqa: E402

import mindtf  # noqa: E402
from mindtf.training.losses import LMLossCell, cross_entropy  # noqa: E402

torch = pytest.importorskip("torch")
F = torch.nn.functional

IGNORE = -100


@pytest.fixture(autouse=True)
def pynative():
    mindtf.setup(device="cpu", mode="pynative", seed=0)
    yield



def _data(shape, vocab=7, seed=0, ignore_index=IGNORE):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((*shape, vocab)) * 3).astype(np.float32)
    targets = rng.integers(0, vocab, size=shape).astype(np.int32)
    flat = targets.reshape(-1)
    flat[::3] = ignore_index  # a third of the positions are ignored
    return logits, targets


def _torch_ce(logits, targets, ls, reduction, ignore_index=IGNORE):
    v = logits.shape[-1]
    out = F.cross_entropy(torch.tensor(logits).reshape(-1, v),
                          torch.tensor(targets.astype(np.int64)).reshape(-1),
                          ignore_index=ignore_index, label_smoothing=ls, reduction=reduction)
    return out.reshape(targets.shape).numpy() if reduction == "none" else out.numpy()


@pytest.mark.parametrize("shape", [(10,), (3, 5)], ids=["2d", "3d"])
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch_pynative(shape, ls, reduction):
    logits, targets = _data(shape)
    got = cross_entropy(Tensor(logits), Tensor(targets), ignore_index=IGNORE,
                        label_smoothing=ls, reduction=reduction)
    np.testing.assert_allclose(got.asnumpy(), _torch_ce(logits, targets, ls, reduction),
                               rtol=1e-5, atol=1e-5)


def test_cross_entropy_other_ignore_index_and_fp16_logits():
    logits, targets = _data((4, 6), ignore_index=0, seed=1)
    got = cross_entropy(Tensor(logits), Tensor(targets), ignore_index=0, label_smoothing=0.1)
    np.testing.assert_allclose(got.asnumpy(), _torch_ce(logits, targets, 0.1, "mean", 0),
                               rtol=1e-5, atol=1e-5)
    half = logits.astype(np.float16)
    got = cross_entropy(Tensor(half), Tensor(targets), ignore_index=0)
    assert got.dtype == ms.float32
    np.testing.assert_allclose(got.asnumpy(),
                               _torch_ce(half.astype(np.float32), targets, 0.0, "mean", 0),
                               rtol=1e-5, atol=1e-5)


def test_all_ignored_gives_zero_not_nan():
    logits, _ = _data((2, 3))
    targets = np.full((2, 3), IGNORE, np.int32)
    for ls in (0.0, 0.1):
        out = cross_entropy(Tensor(logits), Tensor(targets), label_smoothing=ls)
        assert float(out.asnumpy()) == 0.0


def test_bad_arguments():
    logits, targets = _data((4,))
    with pytest.raises(ValueError):
        cross_entropy(Tensor(logits), Tensor(targets), reduction="avg")
    with pytest.raises(ValueError):
        cross_entropy(Tensor(logits), Tensor(targets), label_smoothing=1.5)


class _LossInGraph(nn.Cell):
    def __init__(self, ls):
        super().__init__()
        self.ls = ls

    def construct(self, logits, targets):
        return (cross_entropy(logits, targets, label_smoothing=self.ls),
                cross_entropy(logits, targets, label_smoothing=self.ls, reduction="sum"),
                cross_entropy(logits, targets, label_smoothing=self.ls, reduction="none"))


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_cross_entropy_graph_mode(graph_mode, ls):
    net = _LossInGraph(ls)
    for shape in [(10,), (3, 5)]:
        logits, targets = _data(shape, seed=2)
        mean, total, per = net(Tensor(logits), Tensor(targets))
        np.testing.assert_allclose(mean.asnumpy(), _torch_ce(logits, targets, ls, "mean"),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(total.asnumpy(), _torch_ce(logits, targets, ls, "sum"),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(per.asnumpy(), _torch_ce(logits, targets, ls, "none"),
                                   rtol=1e-5, atol=1e-5)
    logits, _ = _data((2, 3), seed=3)
    mean, _, _ = net(Tensor(logits), Tensor(np.full((2, 3), IGNORE, np.int32)))
    assert float(mean.asnumpy()) == 0.0


class _FixedLogits(nn.Cell):
    """A 'model' that ignores its input and returns fixed logits (to test the loss cell)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = Tensor(logits)

    def construct(self, x):
        return self.logits


def test_lm_loss_cell_mean_sums_and_gradient():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((2, 5, 7)).astype(np.float32)
    ids = rng.integers(0, 7, size=(2, 5)).astype(np.int32)
    ids[1, 3:] = IGNORE
    cell = LMLossCell(_FixedLogits(logits), label_smoothing=0.1, ignore_index=IGNORE)
    got = cell(Tensor(ids), Tensor(ids))
    np.testing.assert_allclose(got.asnumpy(), _torch_ce(logits, ids, 0.1, "mean"),
                               rtol=1e-5, atol=1e-5)
    total, count = cell.sums(Tensor(ids), Tensor(ids))  # sums: no smoothing, exact token count
    np.testing.assert_allclose(total.asnumpy(), _torch_ce(logits, ids, 0.0, "sum"),
                               rtol=1e-5, atol=1e-5)
    assert float(count.asnumpy()) == int((ids != IGNORE).sum())
    # gradients agree with torch's too (ignored positions get zero gradient)
    targets = ids.copy()
    targets[0, :2] = IGNORE
    grad = ms.grad(lambda x: cross_entropy(x, Tensor(targets), label_smoothing=0.1))(
        Tensor(logits))
    tl = torch.tensor(logits, requires_grad=True)
    F.cross_entropy(tl.reshape(-1, 7), torch.tensor(targets.astype(np.int64)).reshape(-1),
                    label_smoothing=0.1).backward()
    np.testing.assert_allclose(grad.asnumpy(), tl.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(grad.asnumpy()[0, :2] == 0)
