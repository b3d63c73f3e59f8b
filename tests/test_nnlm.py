"""The neural LM of Bengio et al. (2003): lookup = one-hot x matrix, the formula, its windows,
training with the Trainer in GRAPH_MODE, op-by-op gradients, and files through load_model."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor

from mindtf.data.batching import RandomLMBatches, full_lm_batches
from mindtf.errors import ConfigError, InputError
from mindtf.models.nnlm import NNLM, NNLMConfig
from mindtf.models.registry import MODEL_TYPES, load_model
from mindtf.training.config import TrainConfig
from mindtf.training.losses import LMLossCell
from mindtf.training.trainer import Trainer


def _model(seed=0, **kw):
    np.random.seed(seed)
    return NNLM(NNLMConfig(**{"vocab_size": 11, "context": 3, "n_embd": 4, "n_hidden": 8, **kw}))


def test_lookup_is_one_hot_times_matrix(ms_cpu):
    m = _model()
    ids = Tensor(np.array([[0, 3, 10], [7, 7, 1]], np.int32))
    looked_up = m.embed(ids).asnumpy()                                    # (2, 3, m)
    one_hot = np.eye(11, dtype=np.float32)[ids.asnumpy()]                 # (2, 3, V)
    np.testing.assert_allclose(looked_up, one_hot @ m.C.weight.asnumpy(), rtol=0, atol=0)
    np.testing.assert_allclose(m.embed(ids, one_hot=True).asnumpy(), looked_up, atol=1e-7)


@pytest.mark.parametrize("direct", [True, False])
def test_logits_follow_the_formula(ms_cpu, direct):
    m = _model(direct=direct)
    ids = np.array([[4, 2, 9, 9, 0, 5]], np.int32)
    logits = m(ids).asnumpy()                                             # (1, 6, V)
    assert logits.shape == (1, 6, 11)
    w = {k: v for k, v in m.state_dict().items()}
    assert set(w) == {"C.weight", "H.weight", "H.bias", "U.weight", "U.bias"} | (
        {"W.weight"} if direct else set())
    padded = np.concatenate([[0, 0], ids[0]])                             # pad_id 0, n-2 = 2
    for t in range(6):
        x = w["C.weight"][padded[t:t + 3]].reshape(-1)                    # ((n-1) m,)
        y = w["U.bias"] + w["U.weight"] @ np.tanh(w["H.bias"] + w["H.weight"] @ x)
        if direct:
            y = y + w["W.weight"] @ x
        np.testing.assert_allclose(logits[0, t], y, rtol=1e-5, atol=1e-5)


def test_each_position_sees_only_its_window(ms_cpu):
    m = _model()
    ids = np.random.default_rng(0).integers(0, 11, (2, 12)).astype(np.int32)
    full = m(ids).asnumpy()
    for t in range(2, 12):  # the window alone gives the same prediction
        np.testing.assert_allclose(m(ids[:, t - 2:t + 1]).asnumpy()[:, -1], full[:, t],
                                   rtol=1e-5, atol=1e-6)
    changed = ids.copy()
    changed[:, 3] = (changed[:, 3] + 1) % 11
    after = m(changed).asnumpy()
    np.testing.assert_array_equal(after[:, :3], full[:, :3])      # before the change
    assert not np.allclose(after[:, 3:6], full[:, 3:6])           # windows holding position 3
    np.testing.assert_array_equal(after[:, 6:], full[:, 6:])      # past the window


def test_one_step_op_by_op(ms_cpu):
    m = _model()
    net = LMLossCell(m)
    x = Tensor(np.array([[1, 2, 3, 4]], np.int32))
    y = Tensor(np.array([[2, 3, 4, 5]], np.int32))
    loss, grads = ms.value_and_grad(net, None, m.trainable_params())(x, y)
    assert np.isfinite(loss.asnumpy()) and len(grads) == len(m.trainable_params())
    assert grads[0].shape == m.C.weight.shape
    # only the rows of C in some window get a gradient (ids 1..4 and the pad id 0)
    touched = np.flatnonzero(np.abs(grads[0].asnumpy()).sum(1))
    assert set(touched.tolist()) <= {0, 1, 2, 3, 4}


def test_trains_in_graph_mode_and_round_trips(ms_cpu, tmp_path):
    text = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10] * 60, np.int32)  # a pattern to learn
    m = _model(context=2)
    cfg = TrainConfig(max_steps=40, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_steps=2,
                      eval_interval=40, log_interval=5, out_dir=str(tmp_path / "run"),
                      mode="graph", progress=False)
    trainer = Trainer(m, LMLossCell(m), cfg, RandomLMBatches(text, 16, 8, seed=0),
                      lambda: full_lm_batches(text[:200], 16, 8))
    before = trainer.evaluate()["loss"]
    summary = trainer.fit()
    assert ms.get_context("mode") == ms.PYNATIVE_MODE  # the Trainer restores the mode
    assert summary["val_loss"] < 0.5 * before
    assert MODEL_TYPES["mindtf-nnlm"] is NNLM
    again = load_model(tmp_path / "run" / "checkpoints" / "best")
    assert isinstance(again, NNLM) and again.config == m.config
    m.save_pretrained(tmp_path / "saved")
    np.testing.assert_array_equal(load_model(tmp_path / "saved")(text[None, :20]).asnumpy(),
                                  m(text[None, :20]).asnumpy())


def test_clear_errors(ms_cpu):
    m = _model()
    with pytest.raises(InputError, match="shape"):
        m(np.array([1, 2, 3], np.int32))
    with pytest.raises(InputError, match="outside the vocabulary"):
        m(np.array([[1, 11]], np.int32))
    with pytest.raises(ConfigError, match="pad_id"):
        NNLMConfig(vocab_size=5, pad_id=5)
