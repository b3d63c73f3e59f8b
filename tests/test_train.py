"""The training engine: exact resume, gradient accumulation, the NaN guard, checkpoints."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn

import mindtf
from mindtf.data.batching import RandomLMBatches
from mindtf.training.config import TrainConfig
from mindtf.training.losses import LMLossCell
from mindtf.training.step import TrainStep
from mindtf.training.trainer import Trainer, TrainingDiverged
from mindtf.training.optim import AdamW

HERE = Path(__file__).resolve().parent


@pytest.fixture()
def restore_mode(ms_cpu):
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


def _tiny_gpt(seed=0):
    np.random.seed(seed)
    return mindtf.GPT(mindtf.GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2,
                                       n_embd=32, dropout=0.0))


def test_resume_in_a_new_process_gives_the_same_losses(tmp_path):
    """10 steps + checkpoint, then a new process resumes for 10 more == 20 straight steps."""
    script = HERE / "helpers" / "resume_run.py"
    env = {**os.environ, "GLOG_v": "3"}

    def run(*args):
        out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                             env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    straight = run(str(tmp_path / "a"), "20")
    first = run(str(tmp_path / "b"), "10", "--save")
    second = run(str(tmp_path / "b"), "10", "--resume")
    assert len(straight) == 20
    np.testing.assert_allclose(first + second, straight, rtol=0, atol=1e-6)
    assert straight[-1] < straight[0]  # it is actually learning


@pytest.mark.parametrize("mode", ["graph", "pynative"])
def test_gradient_accumulation_equals_big_batch(restore_mode, mode):
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 37, (8, 16)).astype(np.int32)
    y = rng.integers(0, 37, (8, 16)).astype(np.int32)
    results = []
    for accum in (4, 1):
        model = _tiny_gpt(seed=1)
        opt = AdamW(model.trainable_params(), lr=1e-2, weight_decay=0.1)
        step = TrainStep(LMLossCell(model), opt, grad_clip=1.0, accum=accum)
        xs, ys = x.reshape(accum, 8 // accum, 16), y.reshape(accum, 8 // accum, 16)
        loss, norm, ok = step(Tensor(1e-2, ms.float32), Tensor(xs), Tensor(ys))
        assert bool(ok.asnumpy())
        results.append((float(loss.asnumpy()), float(norm.asnumpy()),
                        [p.asnumpy().copy() for p in model.trainable_params()]))
    (l4, n4, p4), (l1, n1, p1) = results
    assert abs(l4 - l1) < 1e-5 and abs(n4 - n1) < 1e-5 * max(1.0, n1)
    for a, b in zip(p4, p1):
        np.testing.assert_allclose(a, b, atol=1e-5)


class _PoisonableLoss(nn.Cell):
    """LM loss times a per-batch factor: factor NaN poisons that step."""

    def __init__(self, model):
        super().__init__(auto_prefix=False)
        self.inner = LMLossCell(model)

    def construct(self, x, y, factor):
        return self.inner(x, y) * factor.mean()


class _Batches:
    def __init__(self, factors):
        self.factors, self.i = list(factors), 0
        self.rng = np.random.default_rng(0)

    def next(self):
        f = self.factors[min(self.i, len(self.factors) - 1)]
        self.i += 1
        x = self.rng.integers(0, 37, (2, 16)).astype(np.int32)
        return x, np.roll(x, -1, 1), np.full((1,), f, np.float32)

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, s):
        self.i = s["i"]


def test_nan_guard_skips_poisoned_step_then_stops(restore_mode, tmp_path):
    model = _tiny_gpt()
    cfg = TrainConfig(max_steps=20, warmup_steps=0, mode="graph", out_dir=str(tmp_path),
                      progress=False, max_bad_steps=3)
    trainer = Trainer(model, _PoisonableLoss(model), cfg, _Batches([1.0, np.nan, 1.0]))
    assert trainer.train_one_step()["finite"]
    before = [p.asnumpy().copy() for p in model.trainable_params()]
    opt_step = int(trainer.optimizer.step.asnumpy())
    with pytest.warns(RuntimeWarning, match="non-finite .* update skipped"):
        out = trainer.train_one_step()
    assert not out["finite"]
    for a, p in zip(before, model.trainable_params()):
        np.testing.assert_array_equal(a, p.asnumpy())  # weights untouched
    assert int(trainer.optimizer.step.asnumpy()) == opt_step  # AdamW state untouched
    assert trainer.train_one_step()["finite"]  # training goes on

    trainer2 = Trainer(_tiny_gpt(), _PoisonableLoss(model), cfg, _Batches([np.nan]))
    with pytest.warns(RuntimeWarning):
        with pytest.raises(TrainingDiverged, match="3 steps in a row"):
            for _ in range(5):
                trainer2.train_one_step()


def test_fit_writes_logs_plot_and_checkpoints(restore_mode, tmp_path):
    from mindtf.data.batching import lm_batches

    model = _tiny_gpt()
    data = np.random.default_rng(5).integers(0, 37, 4000).astype(np.int32)
    cfg = TrainConfig(max_steps=12, batch_size=4, warmup_steps=2, mode="graph",
                      out_dir=str(tmp_path), progress=False, eval_interval=4, log_interval=2,
                      keep_last=2)
    trainer = Trainer(model, LMLossCell(model), cfg, RandomLMBatches(data, 16, 4),
                      lambda: lm_batches(data[:1000], 16, 4))
    summary = trainer.fit()
    assert summary["steps"] == 12 and np.isfinite(summary["val_loss"])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_loss" in r] == [4, 8, 12]
    assert {"loss", "lr", "grad_norm", "tokens_per_s"} <= set(rows[0])
    assert (tmp_path / "loss.png").stat().st_size > 1000
    ck = tmp_path / "checkpoints"
    assert sorted(p.name for p in ck.glob("step_*")) == ["step_0000008", "step_0000012"]
    assert (ck / "best" / "model.safetensors").is_file()
    assert (ck / "latest").read_text() == "step_0000012"
    assert not list(ck.glob(".*"))  # no temporary directories left behind
    again = mindtf.GPT.from_pretrained(ck / "step_0000012")
    np.testing.assert_array_equal(again.wte.weight.asnumpy(), model.wte.weight.asnumpy())


def test_whole_validation_set_is_evaluated(restore_mode, tmp_path):
    from mindtf.data.batching import lm_batches
    from mindtf.training.step import EvalStep, evaluate

    model = _tiny_gpt()
    model.set_train(False)
    data = np.random.default_rng(6).integers(0, 37, 16 * 4 * 3 + 1).astype(np.int32)
    res = evaluate(EvalStep(LMLossCell(model)), lm_batches(data, 16, 4))
    assert res["tokens"] == 16 * 4 * 3  # every position of the validation stream counted once
    # the same number computed batch by batch with the model directly
    total = 0.0
    for x, y in lm_batches(data, 16, 4):
        logits = model(Tensor(x)).asnumpy().astype(np.float64)
        top = logits.max(-1, keepdims=True)
        logp = logits - np.log(np.exp(logits - top).sum(-1, keepdims=True)) - top  # log-softmax
        total -= np.take_along_axis(logp, y[..., None], -1).sum()
    assert abs(res["loss"] - total / res["tokens"]) < 1e-4


def test_a_new_run_in_an_old_folder_replaces_its_checkpoints_and_metrics(ms_cpu, tmp_path):
    ck = tmp_path / "checkpoints"
    (ck / "step_0000900").mkdir(parents=True)  # left by an earlier, longer run
    (ck / "latest").write_text("step_0000900")
    (tmp_path / "metrics.jsonl").write_text('{"step": 900, "loss": 1.0}\n{"step": 9')  # cut short
    model = _tiny_gpt()
    data = np.random.default_rng(5).integers(0, 37, 4000).astype(np.int32)
    cfg = TrainConfig(max_steps=4, batch_size=4, warmup_steps=1, mode="pynative",
                      out_dir=str(tmp_path), progress=False, eval_interval=2, log_interval=1,
                      keep_last=1)
    Trainer(model, LMLossCell(model), cfg, RandomLMBatches(data, 16, 4)).fit()
    assert sorted(p.name for p in ck.iterdir()) == ["latest", "step_0000004"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text()
             .splitlines()]
    assert steps == [1, 2, 3, 4]
