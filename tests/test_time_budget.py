"""The training time budget (with a fake clock) and checkpoint averaging."""
import json
import os
import signal

import numpy as np
import pytest

import mindtf
from mindtf.data.batching import RandomLMBatches, lm_batches
from mindtf.errors import CheckpointError, ConfigError, Interrupted
from mindtf.training.averaging import average_checkpoints, write_average
from mindtf.training.budget import TimeBudget, format_duration, parse_duration
from mindtf.training.checkpoints import check_tokenizer_files, find_checkpoint
from mindtf.training.config import TrainConfig
from mindtf.training.losses import LMLossCell
from mindtf.training.schedules import Noam, WarmupCosine
from mindtf.training.trainer import Trainer
from mindtf.weights import read_safetensors, write_safetensors


# --------------------------------------------------------------------------- parsing, schedules
@pytest.mark.parametrize("value,seconds", [
    ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2.5m", 150), ("1h 5m 3s", 3903),
    ("10min", 600), ("600", 600), (600, 600), (12.5, 12.5), (None, None), ("none", None)])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["10x", "", "m", "-5", "0", "0s", "1h-3m", True, [1],
                                   float("inf")])
def test_bad_durations_name_the_field_and_the_forms(value):
    with pytest.raises(ConfigError, match=r"TrainConfig.time_budget=.*'90s', '10m', '1h30m'"):
        TrainConfig(time_budget=value)


def test_config_fields():
    assert TrainConfig(time_budget="10m").time_budget_s == 600
    assert TrainConfig().time_budget_s is None
    with pytest.raises(ConfigError, match="average_last=-1"):
        TrainConfig(average_last=-1)
    assert format_duration(42.5) == "42.5s" and format_duration(570) == "9m30s"
    assert format_duration(3900) == "1h05m00s"


def test_flags_and_yaml_reach_the_train_config(tmp_path):
    import argparse

    from mindtf.cli.train import add_arguments, resolve

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--task", "char-lm", "--train.time_budget", "1h30m",
                              "--train.average_last", "3"])
    train = resolve(args)[1]["train"]
    assert train.time_budget_s == 5400 and train.average_last == 3
    (tmp_path / "run.yaml").write_text("train:\n  time_budget: 90\n")
    args = parser.parse_args(["--task", "char-lm", "--config", str(tmp_path / "run.yaml")])
    assert resolve(args)[1]["train"].time_budget_s == 90


def test_cosine_at_progress_ends_at_min_lr_and_keeps_the_warmup():
    s = WarmupCosine(max_lr=1e-2, warmup_steps=4, total_steps=100, min_lr=1e-3)
    assert s.at(2, 0.7) == s(2) == pytest.approx(1e-2 * 3 / 4)  # warmup: by step
    assert s.at(50, None) == s(50)  # no progress: the step-based schedule
    assert s.at(5, 0.0) == pytest.approx(1e-2)
    assert s.at(5, 0.5) == pytest.approx(1e-3 + 0.5 * 9e-3)
    assert s.at(5, 1.0) == 1e-3 and s.at(5, 7.0) == 1e-3  # exactly the final value
    assert Noam(64, 10).at(20, 1.0) == Noam(64, 10)(20)  # no end: progress ignored


def test_time_budget_progress_and_workers_agree():
    clock = _FakeClock()
    b = TimeBudget(100.0, clock)
    b.start()
    assert b.progress(0, warmup_steps=2, max_steps=10**6) == 0.0  # warmup
    clock.t += 20
    b.record_step(10.0)
    assert b.progress(2, 2, 10**6) == pytest.approx(10 / 80)  # (20 + 10 - 20) / (100 - 20)
    assert b.warmup_end == 20
    assert b.progress(2, 2, 12) == pytest.approx(10 / 80)  # by time (0.125) > by steps (0.1)
    assert b.progress(9, 2, 12) == pytest.approx(8 / 10)  # by steps, whichever is further
    b.reserve = 10.0
    clock.t += 60  # 80 spent: E = 90 and a step takes 10: the next step is the last
    assert b.progress(3, 2, 10**6) == 1.0 and not b.exhausted()
    clock.t += 10
    assert b.exhausted()
    state = b.state_dict()
    other = TimeBudget(100.0, clock, agree=lambda v: [x / 2 for x in v])  # a worker at 0
    other.start()
    clock.t += 150
    assert other.elapsed() == 150 and not other.exhausted()  # the mean of 150 and 0 s
    again = TimeBudget(100.0, clock)
    again.load_state_dict(state)
    assert again.elapsed() == 90 and again.step_estimate() == 10 and again.warmup_end == 20
    again.load_state_dict({})  # a checkpoint from before budgets
    assert again.elapsed() == 0 and again.warmup_end is None
    assert TimeBudget(None, clock).progress(5, 0, 10) is None


# --------------------------------------------------------------------------- the Trainer
class _FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class _TimedBatches(RandomLMBatches):
    """Every batch costs ``dt`` fake seconds (a training step); SIGINT on draw ``interrupt_at``."""

    def __init__(self, data, clock, dt, interrupt_at=None):
        super().__init__(data, 16, 4, seed=3)
        self.clock, self.dt, self.interrupt_at, self.calls = clock, dt, interrupt_at, 0

    def next(self):
        self.calls += 1
        if self.calls == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        self.clock.t += self.dt
        return super().next()


DATA = np.random.default_rng(5).integers(0, 37, 4000).astype(np.int32)


def _trainer(tmp_path, clock, dt=1.0, eval_s=3.0, interrupt_at=None, **cfg):
    def eval_batches():  # an evaluation + checkpoint costs eval_s fake seconds
        clock.t += eval_s
        return lm_batches(DATA[:300], 16, 4)

    np.random.seed(0)
    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=37, block_size=16, n_layer=1, n_head=2,
                                        n_embd=16, dropout=0.0))
    config = TrainConfig(**{"max_steps": 1000, "batch_size": 4, "warmup_steps": 4, "lr": 1e-2,
                            "min_lr": 1e-3, "eval_interval": 10, "log_interval": 1,
                            "mode": "pynative", "out_dir": str(tmp_path), "progress": False,
                            "time_budget": "45s", **cfg})
    return Trainer(model, LMLossCell(model), config,
                   _TimedBatches(DATA, clock, dt, interrupt_at), eval_batches, clock=clock)


def _lrs(history):
    return [r["lr"] for r in history if "loss" in r]


def test_budget_ends_training_at_the_budget_with_the_schedule_at_its_end(ms_cpu, tmp_path):
    # steps of 1 s, evaluations of 3 s every 10 steps, 4 warmup steps, budget 45 s:
    # the last step ends at E = 45 - 3 (the evaluation's time) and the final evaluation at 45
    trainer = _trainer(tmp_path, _FakeClock())
    summary = trainer.fit()
    assert 45 <= summary["train_s"] <= 45 + 1  # not before the budget, at most a step after
    assert summary["train_s"] == 45 and summary["steps"] == 33
    assert summary["time_budget_s"] == 45 and summary["planned_end_s"] == 42
    lrs = _lrs(trainer.history)
    assert len(lrs) == 33
    np.testing.assert_allclose(lrs[:4], [1e-2 * (s + 1) / 4 for s in range(4)])  # warmup
    assert lrs[3] == pytest.approx(1e-2)
    assert lrs[-1] == 1e-3 and lrs[-2] > 1e-3  # the final value, at the last step only
    assert np.all(np.diff(lrs[4:]) <= 0)  # the decay never goes back up
    # planned against actual time, in the history and in metrics.jsonl
    assert trainer.history[-1] == {"step": 33, "time_budget_s": 45.0, "planned_end_s": 42.0,
                                   "train_s": 45.0, "reserve_s": 3.0}
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1] == trainer.history[-1]
    assert [r["step"] for r in rows if "val_loss" in r] == [10, 20, 30, 33]
    state = json.loads((tmp_path / "checkpoints" / "step_0000033" / "trainer.json").read_text())
    assert state["time"]["elapsed_s"] == 45 and state["time"]["warmup_end_s"] == 4


def test_max_steps_stays_a_cap_and_ends_the_decay_too(ms_cpu, tmp_path):
    trainer = _trainer(tmp_path, _FakeClock(), max_steps=12, time_budget="1h")
    summary = trainer.fit()
    assert summary["steps"] == 12 and summary["train_s"] < 3600
    assert _lrs(trainer.history)[-1] == 1e-3


def test_a_budget_spent_in_the_warmup_says_so(ms_cpu, tmp_path):
    trainer = _trainer(tmp_path, _FakeClock(), time_budget="3s", warmup_steps=10)
    with pytest.warns(RuntimeWarning, match=r"ran out in the warmup, at step 3 of 10"):
        summary = trainer.fit()
    assert summary["steps"] == 3 and summary["train_s"] >= 3


def test_a_resumed_run_keeps_the_time_spent(ms_cpu, tmp_path):
    straight = _trainer(tmp_path / "a", _FakeClock())
    straight.fit()
    first = _trainer(tmp_path / "b", _FakeClock(), interrupt_at=15)
    with pytest.raises(Interrupted, match="at step 15"):
        first.fit()
    second = _trainer(tmp_path / "b", _FakeClock())  # a new process: the clock starts afresh
    assert second.resume() == 15 and second.budget.elapsed() == 18  # 15 steps + 1 evaluation
    summary = second.fit()
    assert summary["train_s"] == 45 and summary["steps"] == 33
    assert _lrs(second.history) == _lrs(straight.history)  # the same plan, step for step


# --------------------------------------------------------------------------- averaging
def _fake_checkpoint(folder, state):
    folder.mkdir(parents=True)
    write_safetensors(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text("{}")
    return folder


def test_average_equals_the_numpy_average(tmp_path):
    rng = np.random.default_rng(0)
    states = [{"w": rng.standard_normal((3, 5)).astype(np.float32),
               "b": rng.standard_normal(5).astype(np.float32),
               "count": np.array([i], np.int64)} for i in range(3)]
    paths = [_fake_checkpoint(tmp_path / f"step_{i}", s) for i, s in enumerate(states)]
    mean = average_checkpoints(paths)
    for name in ("w", "b"):
        want = (sum(s[name].astype(np.float64) for s in states) / 3).astype(np.float32)
        np.testing.assert_array_equal(mean[name], want)
        stacked = np.stack([s[name] for s in states])  # float32 arithmetic: rounding apart
        np.testing.assert_allclose(mean[name], stacked.mean(0), rtol=0,
                                   atol=4 * np.finfo(np.float32).eps * np.abs(stacked).max())
        assert mean[name].dtype == np.float32
    assert mean["count"].tolist() == [2]  # not averaged: the last one's
    out = write_average(paths, tmp_path / "averaged")
    np.testing.assert_array_equal(read_safetensors(out / "model.safetensors")["w"], mean["w"])
    assert (out / "config.json").is_file()


def test_average_refuses_different_models(tmp_path):
    a = _fake_checkpoint(tmp_path / "a", {"w": np.zeros((2, 3), np.float32)})
    b = _fake_checkpoint(tmp_path / "b", {"w": np.zeros((3, 2), np.float32)})
    c = _fake_checkpoint(tmp_path / "c", {"v": np.zeros((2, 3), np.float32)})
    with pytest.raises(CheckpointError, match=r"w has shape \(2, 3\) in .*a but \(3, 2\) in"):
        average_checkpoints([a, b])
    with pytest.raises(CheckpointError, match="w only in .*a; v only in .*c"):
        average_checkpoints([a, c])
    with pytest.raises(CheckpointError, match="no checkpoints to average"):
        average_checkpoints([])


def test_average_last_warns_when_the_run_has_fewer(tmp_path):
    from mindtf.training.averaging import average_last

    ck = tmp_path / "checkpoints"
    for i in (2, 4):
        _fake_checkpoint(ck / f"step_000000{i}", {"w": np.full(3, i, np.float32)})
    assert average_last(tmp_path / "empty", 3) is None
    with pytest.warns(RuntimeWarning, match="average_last=3 but the run has 2"):
        out = average_last(tmp_path, 3)
    assert out == ck / "averaged"
    assert read_safetensors(out / "model.safetensors")["w"].tolist() == [3, 3, 3]


def test_fit_averages_the_last_checkpoints(ms_cpu, tmp_path):
    def tokenizer(folder):
        (folder / "tokenizer.json").write_text('{"vocab": 37}')

    np.random.seed(0)
    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=37, block_size=16, n_layer=1, n_head=2,
                                        n_embd=16, dropout=0.0))
    config = TrainConfig(max_steps=8, batch_size=4, warmup_steps=1, eval_interval=2,
                         keep_last=1, average_last=3, mode="pynative", out_dir=str(tmp_path),
                         progress=False)
    trainer = Trainer(model, LMLossCell(model), config, RandomLMBatches(DATA, 16, 4),
                      on_checkpoint=tokenizer, tokenizer_files=["tokenizer.json"])
    summary = trainer.fit()
    ck = tmp_path / "checkpoints"
    steps = sorted(p.name for p in ck.glob("step_*"))
    assert steps == ["step_0000004", "step_0000006", "step_0000008"]  # keeps average_last
    assert summary["averaged_checkpoint"] == str(ck / "averaged")
    saved = [read_safetensors(ck / s / "model.safetensors") for s in steps]
    got = read_safetensors(ck / "averaged" / "model.safetensors")
    assert set(got) == set(saved[0])
    for name in got:
        want = (sum(s[name].astype(np.float64) for s in saved) / 3).astype(np.float32)
        np.testing.assert_array_equal(got[name], want)
    assert not (ck / "averaged" / "optimizer.safetensors").exists()
    state = json.loads((ck / "averaged" / "trainer.json").read_text())
    assert state["averaged_from"] == steps
    check_tokenizer_files(ck / "averaged")  # the tokenizer travelled with it
    again = mindtf.GPT.from_pretrained(ck / "averaged")
    np.testing.assert_array_equal(again.wte.weight.asnumpy(), got["transformer.wte.weight"])
    assert (ck / "latest").read_text() == "step_0000008"  # resuming is not affected
    assert find_checkpoint(tmp_path, prefer="averaged") == ck / "averaged"
    assert find_checkpoint(tmp_path) == ck / "step_0000008"  # no validation: no best
