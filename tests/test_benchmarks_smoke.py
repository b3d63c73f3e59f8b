"""Smoke test of the benchmark scripts (``pytest -m slow tests/test_benchmarks_smoke.py``).

Each script runs with ``--quick`` (tiny model, few steps) in a subprocess and must write a JSON
report with the expected structure. Nothing about speed is asserted.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"

pytestmark = pytest.mark.slow


def _run(script: str, out: Path, *extra: str) -> dict:
    pytest.importorskip("torch")
    env = dict(os.environ, GLOG_v="3")
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--out", str(out),
                           *extra], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert out.is_file(), f"{script} wrote no JSON to {out}"
    assert "| config |" in proc.stdout  # the markdown table
    return json.loads(out.read_text(encoding="utf-8"))


def _check_machine(data: dict) -> None:
    for key in ("cpu", "cores_available", "ram_gib", "os", "python", "mindspore", "torch",
                "numpy"):
        assert key in data["machine"], key
    # honesty: load before/after, and a --quick run is never reportable
    for key in ("load_before", "load_after"):
        assert set(data[key]) == {"time", "loadavg", "uptime"}, key
    assert data["reportable"] is False and data["not_reportable_because"]


def test_bench_train_quick(tmp_path):
    data = _run("bench_train.py", tmp_path / "train.json")
    for key in ("benchmark", "date", "machine", "threads", "quick", "frameworks", "settings",
                "configs", "wall_s"):
        assert key in data, key
    assert data["benchmark"] == "train" and data["quick"] is True
    _check_machine(data)
    assert data["frameworks"] == ["mindtf-graph", "torch"]
    cfg = data["configs"]["tiny"]
    for key in ("model", "tokens_per_step", "steps_per_round", "rounds", "params", "frameworks",
                "ratio_vs_torch"):
        assert key in cfg, key
    assert cfg["params"]["mindtf-graph"] == cfg["params"]["torch"]
    for fw in ("mindtf-graph", "torch"):
        f = cfg["frameworks"][fw]
        for key in ("raw_step_s", "round_tokens_per_s", "tokens_per_s", "median_step_s",
                    "first_step_s", "compile_s_est", "warmup_step_s", "build_s"):
            assert key in f, (fw, key)
        assert len(f["raw_step_s"]) == cfg["rounds"] == 1
        assert len(f["raw_step_s"][0]) == cfg["steps_per_round"] == 2
        assert all(s > 0 for s in f["raw_step_s"][0])
        assert set(f["tokens_per_s"]) == {"median", "min", "max"}
    ratio = cfg["ratio_vs_torch"]["mindtf-graph"]
    assert set(ratio) == {"per_round", "median", "min", "max"} and ratio["median"] > 0
    assert cfg["roofline"]["min_step_s"] > 0 and cfg["roofline"]["matmul_gflop_per_step"] > 0
    # the encoder-decoder Transformer vs torch.nn.Transformer, same parameter count
    seq = data["configs"]["tiny-translation"]
    assert seq["kind"] == "seq2seq"
    assert seq["params"]["mindtf-graph"] == seq["params"]["torch"]
    assert seq["ratio_vs_torch"]["mindtf-graph"]["median"] > 0


def test_bench_generate_quick(tmp_path):
    data = _run("bench_generate.py", tmp_path / "gen.json")
    for key in ("benchmark", "date", "machine", "threads", "quick", "settings", "configs",
                "wall_s"):
        assert key in data, key
    assert data["benchmark"] == "generate" and data["quick"] is True
    _check_machine(data)
    assert data["settings"]["block_size"] >= data["settings"]["prompt_tokens"] + \
        data["settings"]["new_tokens"]
    cfg = data["configs"]["tiny"]
    for key in ("model", "params", "new_tokens", "rounds", "raw_s", "seconds", "tokens_per_s",
                "speedup", "speedup_per_round", "outputs_match"):
        assert key in cfg, key
    assert cfg["rounds"] >= 3
    for mode in ("cache", "no_cache"):
        assert len(cfg["raw_s"][mode]) == cfg["rounds"]
        assert set(cfg["tokens_per_s"][mode]) == {"median", "min", "max"}
    assert cfg["speedup"]["median"] > 0
    assert cfg["outputs_match"] is True  # greedy: the cache must not change the tokens
