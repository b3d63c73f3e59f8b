"""Data-parallel training on MindSpore's msrun (``python -m mindtf train --distributed N``).

On this CPU, 2 msrun workers with batch B must give the losses of one process with batch 2B
(same global batches, gradients averaged over the workers inside the compiled step); the
checkpoint the workers write must resume in one process; a worker that dies must stop the run
with a message that names it. The unit tests check the batch sharding without a cluster.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mindtf.data.batching import RandomLMBatches
from mindtf.distributed import (World, msrun_command, msrun_role, shard_items, shard_rows,
                                world)
from mindtf.errors import ConfigError

B = 4  # sequences per worker
TINY_GPT = ["--model.n_layer", "1", "--model.n_head", "2", "--model.n_embd", "32",
            "--model.block_size", "16", "--model.dropout", "0"]


# --------------------------------------------------------------------------- unit tests
def test_shard_rows_splits_a_global_batch_into_contiguous_equal_parts():
    x = np.arange(24).reshape(8, 3)
    y = -x
    parts = [shard_rows((x, y), World(rank, 4)) for rank in range(4)]
    assert [p[0].shape for p in parts] == [(2, 3)] * 4
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)  # nothing lost
    np.testing.assert_array_equal(parts[1][1], y[2:4])  # every array cut the same way
    assert shard_rows((x,), World())[0] is x  # one worker: the batch itself
    with pytest.raises(ConfigError, match="cannot be split evenly over 3 workers"):
        shard_rows((x,), World(0, 3))


def test_two_shards_of_a_random_lm_batch_are_the_batch_of_one_process():
    """What makes 2 workers x B equal 1 process x 2B: both draw the same global batches."""
    ids = np.arange(500, dtype=np.int32) % 37
    one, two = RandomLMBatches(ids, 16, 2 * B, seed=3), RandomLMBatches(ids, 16, 2 * B, seed=3)
    for _ in range(3):
        batch = one.next()
        global_batch = two.next()
        halves = [shard_rows(global_batch, World(r, 2)) for r in (0, 1)]
        for j in (0, 1):  # x and y
            np.testing.assert_array_equal(np.concatenate([h[j] for h in halves]), batch[j])


def test_shard_items_deals_validation_batches_round_robin():
    assert list(shard_items(range(7), World(0, 3))) == [0, 3, 6]
    assert list(shard_items(range(7), World(2, 3))) == [2, 5]
    assert list(shard_items(range(3), World())) == [0, 1, 2]


def test_outside_msrun_this_process_is_a_world_of_one(monkeypatch):
    monkeypatch.delenv("MS_ROLE", raising=False)
    assert msrun_role() is None and world() == World(0, 1) and world().is_main
    monkeypatch.setenv("MS_ROLE", "MS_SCHED")
    assert msrun_role() == "scheduler"


def test_the_msrun_command_line(tmp_path):
    cmd = msrun_command(2, ["train", "--task", "char-lm"], tmp_path, 12345)
    assert cmd[:3] == [sys.executable, "-m", "mindspore.parallel.cluster.run"]
    for flag in ("--worker_num=2", "--local_worker_num=2", "--master_port=12345",
                 f"--log_dir={tmp_path}", "--join=True"):
        assert flag in cmd
    assert cmd[-6:] == ["python", "-m", "mindtf", "train", "--task", "char-lm"]


# --------------------------------------------------------------------------- msrun on CPU
def _text(path: Path) -> Path:
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog while birds sing on the mat".split()
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
                              for _ in range(400)), encoding="utf-8")
    return path


def _train(out_dir: Path, text: Path, *extra: str, timeout: int = 300):
    """``python -m mindtf train`` on the tiny GPT, constant learning rate, a loss every step."""
    cmd = [sys.executable, "-m", "mindtf", "train", "--task", "char-lm", "--data.dataset", "file",
           "--data.text_file", str(text), "--data.sample_tokens", "8", *TINY_GPT,
           "--train.schedule", "constant", "--train.log_interval", "1",
           "--train.eval_interval", "5", "--train.out_dir", str(out_dir), *extra]
    env = {**os.environ, "GLOG_v": "3", "MINDTF_PROGRESS": "plain"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _metrics(out_dir: Path):
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in rows if "loss" in r}
    vals = {r["step"]: r["val_loss"] for r in rows if "val_loss" in r}
    return rows, losses, vals


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process with batch 2B for 12 steps; 2 msrun workers with batch B for 10 steps."""
    root = tmp_path_factory.mktemp("dp")
    text = _text(root / "tiny.txt")
    _train(root / "one", text, "--train.batch_size", str(2 * B), "--train.max_steps", "12")
    t0 = time.perf_counter()
    stdout = _train(root / "two", text, "--train.batch_size", str(B), "--train.max_steps", "10",
                    "--distributed", "2")
    return {"root": root, "text": text, "stdout": stdout, "seconds": time.perf_counter() - t0}


def test_two_workers_give_the_losses_of_one_process_with_twice_the_batch(runs):
    root = runs["root"]
    _, one, one_val = _metrics(root / "one")
    rows, two, two_val = _metrics(root / "two")
    assert sorted(two) == list(range(1, 11))  # each step logged once: only rank 0 writes
    assert len(rows) == 10 + 2
    np.testing.assert_allclose([two[s] for s in range(1, 11)], [one[s] for s in range(1, 11)],
                               rtol=0, atol=1e-5)
    # the whole validation set, shared out between the workers and summed, is scored once
    np.testing.assert_allclose([two_val[5], two_val[10]], [one_val[5], one_val[10]],
                               rtol=0, atol=1e-5)
    assert one[10] < one[1]  # it learns
    # rank 0 wrote the run's files and printed the summary; rank 1 only trained
    out = root / "two"
    assert (out / "checkpoints" / "latest").read_text().strip() == "step_0000010"
    for name in ("config.yaml", "summary.json", "loss.png"):
        assert (out / name).is_file(), name
    logs = out / "msrun_logs"
    assert "validation loss:" in runs["stdout"] and "worker 0 of 2" in runs["stdout"]
    worker1 = (logs / "worker_1.log").read_text()
    assert "worker 1 of 2" in worker1 and "validation loss:" not in worker1
    assert json.loads((out / "summary.json").read_text())["steps"] == 10


def test_the_checkpoint_of_two_workers_resumes_in_one_process(runs):
    """2 workers x B for 10 steps, then one process x 2B from their checkpoint to step 12 ==
    one process x 2B for 12 straight steps."""
    root = runs["root"]
    _train(root / "two", runs["text"], "--resume", "--train.max_steps", "12",
           "--train.batch_size", str(2 * B))
    _, one, _ = _metrics(root / "one")
    _, resumed, _ = _metrics(root / "two")
    assert sorted(resumed) == list(range(1, 13))
    np.testing.assert_allclose([resumed[11], resumed[12]], [one[11], one[12]], rtol=0, atol=1e-5)


def test_a_worker_that_dies_stops_the_run_with_its_name(tmp_path):
    """kill -9 worker 1 in the middle of training: msrun stops the others, the command exits
    with an error that names the worker and its log, and nothing hangs."""
    text = _text(tmp_path / "tiny.txt")
    out_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "mindtf", "train", "--task", "char-lm", "--data.dataset",
           "file", "--data.text_file", str(text), *TINY_GPT, "--train.batch_size", str(B),
           "--train.max_steps", "100000", "--train.eval_interval", "100000",
           "--train.out_dir", str(out_dir), "--distributed", "2"]
    env = {**os.environ, "GLOG_v": "3", "MINDTF_PROGRESS": "plain",
           "MS_NODE_TIMEOUT": "10"}  # the scheduler's heartbeat timeout (MindSpore's default: 30)
    out, err = open(tmp_path / "stdout", "w+"), open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env,
                            start_new_session=True)  # its own group: a Ctrl-C for it alone
    log = out_dir / "msrun_logs" / "worker_1.log"
    try:
        deadline = time.monotonic() + 120
        pid = None
        while pid is None and time.monotonic() < deadline and proc.poll() is None:
            m = re.search(r"worker 1 of 2, pid (\d+)", log.read_text() if log.is_file() else "")
            pid = int(m.group(1)) if m else None
            time.sleep(0.5)
        assert pid is not None, "worker 1 did not start"
        time.sleep(3)  # let it compile and train
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        proc.wait(timeout=120)
        stopped_after = time.monotonic() - t0
    finally:
        if proc.poll() is None:  # only after a failure above: Ctrl-C, msrun kills the workers
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.close()
        err.close()
    stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert proc.returncode == 1, stdout[-2000:] + stderr[-2000:]
    assert "worker 1 was killed by signal 9" in stderr, stderr
    assert "worker_1.log" in stderr and "msrun stopped the other workers" in stderr
    assert stopped_after < 90
