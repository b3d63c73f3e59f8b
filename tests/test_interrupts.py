"""Ctrl-C and SIGTERM: a graph-mode training run stopped by SIGINT writes a checkpoint, exits 130
and resumes with the losses of a run never stopped; a second Ctrl-C leaves the last complete
checkpoint as it was; a resume that fails leaves every file of the run folder as it was;
generate and translate stop at a safe point and keep what they printed."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from mindtf.cli.main import main
from mindtf.errors import Interrupted

REPO = Path(__file__).resolve().parent.parent
# a constant learning rate: the run stopped after a few of its 100,000 steps and a run of K steps
# then follow the same schedule (a cosine one would depend on max_steps)
TINY = ["--model.n_layer", "1", "--model.n_head", "2", "--model.n_embd", "16",
        "--model.block_size", "16", "--train.batch_size", "8", "--train.log_interval", "1",
        "--train.schedule", "constant", "--train.lr", "3e-3", "--train.eval_interval", "1000",
        "--data.sample_tokens", "5", "--device", "cpu"]


def _text(folder: Path) -> Path:
    text = folder / "tiny.txt"
    text.write_text("the cat sat on the mat. the dog ate the hat.\n" * 40)  # 1,800 characters
    return text


def _cli(*argv, timeout=300, until=None):
    """Run ``python -m mindtf ARGV``; with ``until``, send SIGINT once a line contains it.
    Returns ``(exit code, output)``."""
    env = {**os.environ, "GLOG_v": "3", "MINDTF_PROGRESS": "plain"}
    proc = subprocess.Popen([sys.executable, "-m", "mindtf", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if until and until in line:
                proc.send_signal(signal.SIGINT)
                until = None
        return proc.wait(), "".join(lines)
    finally:
        timer.cancel()


def _losses(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert len(steps) == len(set(steps)), f"a step logged twice: {steps}"
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A graph-mode char-lm run of "forever" steps, stopped by SIGINT after step 3."""
    tmp = tmp_path_factory.mktemp("stopped")
    run = tmp / "run"
    code, out = _cli("train", "--task", "char-lm", "--data.dataset", "file", "--data.text_file",
                     str(_text(tmp)), *TINY, "--train.mode", "graph", "--train.max_steps",
                     "100000", "--train.out_dir", str(run), until="training: step 3/")
    return run, code, out


def test_ctrl_c_in_graph_mode_writes_a_checkpoint_and_exits_130(stopped_run):
    run, code, out = stopped_run
    assert code == 130, out[-3000:]
    assert "Traceback" not in out
    latest = run / "checkpoints" / (run / "checkpoints" / "latest").read_text()
    step = json.loads((latest / "trainer.json").read_text())["step"]
    assert step >= 3 and latest.name == f"step_{step:07d}"
    assert f"interrupted at step {step} of 100000: checkpoint written to" in out
    assert f"continue: python -m mindtf train --resume --train.out_dir {run}" in out
    assert max(_losses(run)) == step  # every step before the checkpoint logged, none after
    assert not list((run / "checkpoints").glob(".*"))  # no temporary folder left


def test_resume_after_ctrl_c_gives_the_losses_of_an_unstopped_run(stopped_run, tmp_path):
    run = tmp_path / "resumed"
    shutil.copytree(stopped_run[0], run)
    step = max(_losses(run))
    total = step + 4
    code, out = _cli("train", "--resume", "--train.out_dir", str(run), "--train.max_steps",
                     str(total))
    assert code == 0, out[-3000:]
    assert f"resumed from step {step}" in out
    straight = tmp_path / "straight"
    code, out = _cli("train", "--task", "char-lm", "--data.dataset", "file", "--data.text_file",
                     str(_text(tmp_path)), *TINY, "--train.mode", "graph", "--train.max_steps",
                     str(total), "--train.out_dir", str(straight))
    assert code == 0, out[-3000:]
    resumed, unstopped = _losses(run), _losses(straight)
    assert sorted(resumed) == sorted(unstopped) == list(range(1, total + 1))
    np.testing.assert_allclose([resumed[s] for s in range(1, total + 1)],
                               [unstopped[s] for s in range(1, total + 1)], rtol=0, atol=1e-5)


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _damage(run: Path, what: str) -> list:
    """Break ``run`` in one way; returns the extra options of the resume that must fail."""
    ck = run / "checkpoints"
    latest = ck / (ck / "latest").read_text()
    if what == "trainer.json":
        (latest / "trainer.json").write_text('{"step": "many"')
    elif what == "latest":
        (ck / "latest").write_text("step_9999999")
    elif what == "config.json":
        (latest / "config.json").write_text('["not", "a", "config"]')
    elif what == "text":
        (run / "other.txt").write_text("completely different text, with new letters: XYZ\n" * 50)
        return ["--data.text_file", str(run / "other.txt")]
    elif what == "model":
        return ["--model.n_embd", "32"]
    return []


@pytest.mark.parametrize("what,message", [
    ("model", "differs from the checkpoint's in n_embd (checkpoint 16, now 32)"),
    ("text", "the data now give another tokenizer (tokenizer.json differs"),
    ("trainer.json", "trainer.json cannot be read"),
    ("latest", "names 'step_9999999', which is not a checkpoint folder"),
    ("config.json", "config.json cannot be read"),
])
def test_failed_resume_leaves_the_run_folder_as_it_was(stopped_run, tmp_path, capsys, what,
                                                       message):
    run = tmp_path / "run"
    shutil.copytree(stopped_run[0], run)
    extra = _damage(run, what)
    before = _digest(run)
    code = main(["train", "--resume", "--train.out_dir", str(run), "--train.max_steps", "50",
                 "--train.mode", "pynative", *extra, "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and message in err, err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert _digest(run) == before  # byte for byte


def test_generate_refuses_a_tokenizer_that_is_not_the_models(stopped_run, tmp_path, capsys):
    ck = tmp_path / "ck"
    run = stopped_run[0]
    shutil.copytree(run / "checkpoints" / (run / "checkpoints" / "latest").read_text(), ck)
    data = json.loads((ck / "tokenizer.json").read_text())
    data["chars"] = data["chars"][::-1]  # same size, other ids
    (ck / "tokenizer.json").write_text(json.dumps(data))
    assert main(["generate", "--checkpoint", str(ck), "--max-new-tokens", "2"]) == 1
    assert "tokenizer.json is not the tokenizer this model was trained with" in \
        capsys.readouterr().err


# --------------------------------------------------------------------------- in process
def _tiny_trainer(tmp_path, on_checkpoint=None, **cfg):
    import mindtf
    from mindtf.data.batching import RandomLMBatches
    from mindtf.training.config import TrainConfig
    from mindtf.training.losses import LMLossCell
    from mindtf.training.trainer import Trainer

    class SignallingBatches(RandomLMBatches):
        """Sends itself SIGINT while drawing the batch of step ``at`` (1-based)."""
        at = 4

        def next(self):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGINT)
            return super().next()

    np.random.seed(0)
    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=37, block_size=16, n_layer=1, n_head=2,
                                        n_embd=16))
    data = np.random.default_rng(5).integers(0, 37, 4000).astype(np.int32)
    config = TrainConfig(**{"max_steps": 10, "batch_size": 4, "warmup_steps": 1,
                            "mode": "pynative", "out_dir": str(tmp_path), "progress": False,
                            **cfg})
    return Trainer(model, LMLossCell(model), config, SignallingBatches(data, 16, 4),
                   on_checkpoint=on_checkpoint)


def test_ctrl_c_finishes_the_step_and_checkpoints(ms_cpu, tmp_path):
    trainer = _tiny_trainer(tmp_path)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match="interrupted at step 4 of 10") as exc:
        trainer.fit()
    assert exc.value.run_dir == str(tmp_path)
    saved = tmp_path / "checkpoints" / "step_0000004"
    assert json.loads((saved / "trainer.json").read_text())["step"] == 4
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_0000004"
    assert signal.getsignal(signal.SIGINT) is handler  # the handlers are given back


def test_second_ctrl_c_keeps_the_last_complete_checkpoint(ms_cpu, tmp_path):
    def second_signal(folder):  # Ctrl-C again while the interruption's checkpoint is written
        if trainer.stop:
            os.kill(os.getpid(), signal.SIGINT)

    trainer = _tiny_trainer(tmp_path, on_checkpoint=second_signal, eval_interval=2)
    with pytest.raises(KeyboardInterrupt) as exc:
        trainer.fit()
    assert not isinstance(exc.value, Interrupted)  # at once, no checkpoint of its own
    ck = tmp_path / "checkpoints"
    assert (ck / "latest").read_text() == "step_0000002"
    assert sorted(p.name for p in ck.iterdir()) == ["latest", "step_0000002"]  # no temp folder
    assert json.loads((ck / "step_0000002" / "trainer.json").read_text())["step"] == 2


def test_interrupted_rewrite_puts_the_old_folder_back(tmp_path, monkeypatch):
    from mindtf.training import checkpoints

    final = tmp_path / "best"
    checkpoints.write_dir_atomically(final, lambda d: (d / "w").write_text("old"))
    calls = []
    replace = os.replace

    def interrupted_replace(a, b):  # Ctrl-C between moving the old folder and the new one
        calls.append(b)
        if len(calls) == 2:
            raise KeyboardInterrupt
        replace(a, b)

    monkeypatch.setattr(checkpoints.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.write_dir_atomically(final, lambda d: (d / "w").write_text("new"))
    assert (final / "w").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["best"]


def test_generate_stops_at_the_next_token(ms_cpu):
    import mindtf

    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=12, block_size=32, n_layer=1, n_head=2,
                                        n_embd=16))
    seen = []

    def on_token(col):
        seen.append(col)
        if len(seen) == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted, match="after 3 of 20 tokens") as exc:
        mindtf.generate(model, [[1, 2]], 20, on_token=on_token)
    assert exc.value.partial.shape == (1, 5)
    np.testing.assert_array_equal(exc.value.partial[0, 2:], np.concatenate(seen))


def test_generate_command_keeps_what_it_printed(stopped_run, capsys, monkeypatch):
    from mindtf.decoding import gpt_sampling

    run = stopped_run[0]
    sample = gpt_sampling.sample_next
    calls = []

    def interrupting_sample(*args):
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return sample(*args)

    monkeypatch.setattr(gpt_sampling, "sample_next", interrupting_sample)
    assert main(["generate", "--checkpoint", str(run), "--prompt", "the ",
                 "--max-new-tokens", "50", "--device", "cpu"]) == 130
    out, err = capsys.readouterr()
    assert out.startswith("the ") and len(out) == len("the ") + 4 + 1  # 4 tokens and a newline
    assert "generation interrupted after 4 of 50 tokens" in err


def test_translate_command_prints_what_is_done(tmp_path, capsys, monkeypatch):
    from mindtf.recipes import translation

    class Model:
        class config:
            max_len = 64

    def fake_translate(model, sentences, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during the first batch
        return [s.upper() for s in sentences]

    monkeypatch.setattr(translation, "load_translator", lambda path: (Model(), None, None, {}))
    monkeypatch.setattr(translation, "translate_sentences", fake_translate)
    monkeypatch.setattr("mindtf.cli.common.setup_runtime", lambda *a, **k: None)
    lines = [f"satz {i}" for i in range(6)]
    assert main(["translate", "--checkpoint", "x", "--batch-size", "1", *lines]) == 130
    out, err = capsys.readouterr()
    assert out.splitlines() == ["SATZ 0", "SATZ 1", "SATZ 2", "SATZ 3"]  # the first 4-line chunk
    assert "translation interrupted after 4 of 6 lines" in err
