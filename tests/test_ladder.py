"""The perplexity ladder: its scoring windows, and ``python -m mindtf ladder --smoke`` end to end
on the real Tiny Shakespeare (the mirror), twice: the second run reuses the GPT."""
import json

import numpy as np
import pytest

from mindtf.cli.main import main
from mindtf.recipes.ladder_setup import ladder_configs


@pytest.mark.parametrize("n, block, context", [(100, 10, 4), (11, 10, 4), (5, 10, 3),
                                               (300, 16, 16), (57, 8, 1)])
def test_sliding_windows_score_every_token_once(n, block, context):
    from mindtf.recipes.ladder import sliding_lm_batches

    ids = np.arange(n, dtype=np.int32) + 1000  # token value - 1000 = its position
    scored = []
    for x, y in sliding_lm_batches(ids, block, context, batch=3):
        assert x.shape == y.shape == (3, block)
        for row_x, row_y in zip(x, y):
            for j in np.flatnonzero(row_y != -100):
                position = int(row_y[j]) - 1000
                assert row_x[j] == ids[position - 1]             # y is the next token of x
                assert j + 1 >= min(context, position)            # enough tokens before it
                scored.append(position)
    assert sorted(scored) == list(range(1, n))


def test_smoke_configs_never_touch_the_quickstart_run(tmp_path):
    plan = ladder_configs(out_dir=str(tmp_path), smoke=True)
    assert [g.train.out_dir for g in plan.gpts] == [str(tmp_path / "gpt"),
                                                     str(tmp_path / "gpt_long")]
    full = ladder_configs(out_dir="runs/x")
    assert [g.train.out_dir for g in full.gpts] == ["runs/quickstart", "runs/x/gpt_long"]
    assert [g.name for g in ladder_configs(long_gpt=False).gpts] == ["GPT (quickstart)"]


def test_smoke_ladder_end_to_end(shared_data, tmp_path, capsys):
    out = tmp_path / "ladder"
    args = ["ladder", "--smoke", "--out", str(out), "--mirror", str(shared_data), "--offline",
            "--data-dir", str(tmp_path / "data"), "--device", "cpu", "--no-progress"]
    assert main(args) == 0
    table = capsys.readouterr().out
    result = json.loads((out / "ladder.json").read_text())
    rungs = {r["name"]: r for r in result["rungs"]}
    assert list(rungs) == ["unigram", "bigram", "trigram", "5-gram", "NNLM", "GPT (quickstart)",
                           "GPT (longer)"]
    assert all(r["tokens"] == result["validation_tokens"] == 4999 for r in rungs.values())
    ce = [rungs[name]["cross_entropy"] for name in ("unigram", "bigram", "trigram", "5-gram")]
    assert ce == sorted(ce, reverse=True) and len(set(ce)) == 4  # each rung lower
    assert all(np.isfinite(r["cross_entropy"]) and r["perplexity"] > 1 for r in rungs.values())
    assert rungs["NNLM"]["cross_entropy"] < np.log(65) + 0.1
    assert not rungs["GPT (quickstart)"]["reused"] and not rungs["GPT (longer)"]["reused"]
    assert rungs["GPT (longer)"]["steps"] == 40 and rungs["GPT (quickstart)"]["steps"] == 30
    assert (out / "ladder.png").stat().st_size > 1000
    assert "| bigram | counts, kneser-ney | 1 |" in table
    # a second run scores the GPT checkpoint the first one trained
    assert main(args + ["--nnlm-steps", "2"]) == 0
    again = json.loads((out / "ladder.json").read_text())["rungs"]
    for row in again[-2:]:
        assert row["reused"] and row["cross_entropy"] == rungs[row["name"]]["cross_entropy"]
    assert "(earlier run)" in capsys.readouterr().out
