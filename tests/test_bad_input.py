"""Bad input from the command line and the Python API: every value the issue found is refused
before any work starts, with one line that names the setting, the value, what is allowed and the
fix (exit code 1, no traceback unless --debug)."""
import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mindtf.cli.main import main
from mindtf.errors import CheckpointError, ConfigError, InputError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def train(tmp_path):
    """``train`` with a tiny char-lm run on a tiny file: what a bad value is added to."""
    text = tmp_path / "tiny.txt"
    text.write_text("the cat sat on the mat.\n" * 40)
    return ["train", "--task", "char-lm", "--data.dataset", "file", "--data.text_file", str(text),
            "--model.n_layer", "1", "--model.n_head", "2", "--model.n_embd", "16",
            "--model.block_size", "16", "--train.max_steps", "2", "--train.mode", "pynative",
            "--train.out_dir", str(tmp_path / "run"), "--device", "cpu"]


def _prepare(tmp_path: Path, what: str) -> str:
    """A broken file or folder for a case below; returns its path."""
    if what == "yaml":
        (tmp_path / "run.yaml").write_text("model:\n  n_layer: 2\n train: {max_steps: 3\n")
        return str(tmp_path / "run.yaml")
    if what == "file":
        (tmp_path / "a_file").write_text("not a folder")
        return str(tmp_path / "a_file")
    if what == "under_file":
        (tmp_path / "a_file").write_text("not a folder")
        return str(tmp_path / "a_file" / "run")
    if what == "bad_checkpoint":  # a checkpoint folder whose config.json is garbage
        ck = tmp_path / "ck"
        ck.mkdir()
        (ck / "config.json").write_text('{"model_type": "gpt2", "n_layer": "many"}')
        (ck / "tokenizer.json").write_text('{"type": "char", "chars": ["a", "b"], '
                                           '"mindtf_tokenizer": "char"}')
        return str(ck)
    return what


GENERATE = ["generate", "--checkpoint", "{bad_checkpoint}", "--device", "cpu"]

# (argv -- "TRAIN" is the tiny run above, "{x}" a file made by _prepare --, the message)
CASES = [
    (["TRAIN", "--train.lr", "nan"], "TrainConfig.lr=nan: must be a finite number > 0"),
    (["TRAIN", "--train.lr", "-1"], "TrainConfig.lr=-1.0: must be a finite number > 0"),
    (["TRAIN", "--model.n_layer", "-1"], "GPTConfig.n_layer=-1: must be an integer >= 1"),
    (["TRAIN", "--model.block_size", "0"], "GPTConfig.block_size=0: must be an integer >= 1"),
    (["TRAIN", "--model.dropout", "1.5"], "GPTConfig.dropout=1.5: must be a finite number in "
                                          "[0, 1)"),
    (["TRAIN", "--data.val_fraction", "1"], "CharLMData.val_fraction=1.0: must be a finite "
                                            "number in (0, 1)"),
    (["TRAIN", "--threads", "0"], "threads=0: must be an integer in [1, 1024]"),
    (["TRAIN", "--config", "{yaml}"], "run.yaml, line 3, column 2: not valid YAML"),
    (["TRAIN", "--train.out_dir", "{file}"], "a_file (train.out_dir) is a file"),
    (["TRAIN", "--train.out_dir", "{under_file}"], "cannot be made: "),
    (["train", "--resume", "--train.out_dir", "/nonexistent"],
     "nothing to resume in /nonexistent: the folder does not exist"),
    ([*GENERATE, "--top-p", "0"], "top_p=0.0: must be a finite number in (0, 1]"),
    ([*GENERATE, "--top-p", "1.5"], "top_p=1.5: must be a finite number in (0, 1]"),
    ([*GENERATE, "--top-k", "-5"], "top_k=-5: must be an integer >= 1 (or none)"),
    ([*GENERATE, "--repetition-penalty", "-2"], "repetition_penalty=-2.0: must be a finite "
                                                "number > 0"),
    ([*GENERATE, "--repetition-penalty", "0"], "repetition_penalty=0.0"),
    ([*GENERATE, "--num-samples", "0"], "num_samples=0: must be an integer in [1, 1024]"),
    ([*GENERATE, "--max-new-tokens", "1000000000"], "max_new_tokens=1000000000: must be an "
                                                    "integer in [0, 100000]"),
    ([*GENERATE, "--temperature", "inf"], "temperature=inf"),
    (GENERATE, "config.json does not describe a GPT"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(a[-2:]) for a, _ in CASES])
def test_every_bad_value_is_one_line_and_exit_code_1(argv, message, train, tmp_path, capsys):
    argv = [a for arg in argv for a in (train if arg == "TRAIN" else [arg])]
    argv = [_prepare(tmp_path, a[1:-1]) if a.startswith("{") else a for a in argv]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_a_real_process_prints_no_traceback(tmp_path):
    env = {**os.environ, "GLOG_v": "3"}
    out = subprocess.run([sys.executable, "-m", "mindtf", "train", "--task", "char-lm",
                          "--model.n_layer", "-1", "--print-config"], capture_output=True,
                         text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr == "error: GPTConfig.n_layer=-1: must be an integer >= 1.\n"


def test_debug_shows_the_traceback(train, monkeypatch):
    with pytest.raises(ConfigError, match="TrainConfig.lr=nan"):
        main(["--debug", *train, "--train.lr", "nan"])
    with pytest.raises(ConfigError):
        main([*train, "--train.lr", "nan", "--debug"])
    monkeypatch.setenv("MINDTF_DEBUG", "1")
    with pytest.raises(ConfigError):
        main([*train, "--train.lr", "nan"])


def test_a_full_disk_is_one_line(train, capsys, monkeypatch):
    from mindtf.recipes import char_lm

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/metrics.jsonl")

    monkeypatch.setattr(char_lm, "train_char_lm", full)
    assert main(train) == 1
    err = capsys.readouterr().err
    assert err == ("error: runs/x/metrics.jsonl: No space left on device (the disk is full: "
                   "free some space or choose a folder on another disk (--train.out_dir); the "
                   "last complete checkpoint is kept).\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only folder")
def test_a_read_only_run_folder_is_one_line(train, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main([*train, "--train.out_dir", str(locked / "run")]) == 1
        assert "is read-only" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_eval_max_batches_is_not_the_whole_validation_set(capsys):
    from mindtf.cli.common import print_char_lm_summary

    summary = {"val_loss": 2.0, "steps": 3, "seconds": 1.0, "tokens_per_s": 10.0,
               "sample": "x", "best_checkpoint": "ck", "plot": "p", "eval_max_batches": 1}
    print_char_lm_summary(summary)
    out = capsys.readouterr().out
    assert "(first 1 validation batches)" in out and "whole" not in out
    print_char_lm_summary({**summary, "eval_max_batches": None})
    assert "(whole validation set)" in capsys.readouterr().out


# --------------------------------------------------------------------------- Python API
@pytest.mark.parametrize("kwargs,message", [
    ({"n_layer": -2}, "GPTConfig.n_layer=-2"), ({"vocab_size": 0}, "GPTConfig.vocab_size=0"),
    ({"dropout": float("nan")}, "GPTConfig.dropout=nan"), ({"n_inner": 0}, "n_inner=0"),
    ({"norm": "batchnorm"}, "GPTConfig.norm='batchnorm': choose one of"),
])
def test_gpt_config_checks_every_field(kwargs, message):
    from mindtf.models.gpt_config import GPTConfig

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        GPTConfig(**kwargs)


@pytest.mark.parametrize("cls,kwargs,message", [
    ("TransformerConfig", {"n_encoder_layers": 0}, "n_encoder_layers=0"),
    ("TransformerConfig", {"pad_id": 10000}, "pad_id=10000"),
    ("TransformerConfig", {"d_model": 9, "n_heads": 3}, "even d_model"),
    ("TrainConfig", {"beta2": 1.0}, "beta2=1.0"), ("TrainConfig", {"keep_last": 0}, "keep_last"),
    ("TrainConfig", {"eval_max_batches": 0}, "eval_max_batches=0"),
    ("TrainConfig", {"seed": -1}, "seed=-1"), ("TrainConfig", {"grad_clip": -1.0}, "grad_clip"),
    ("CharLMData", {"dataset": "file"}, "needs text_file"),
    ("CharLMData", {"sample_tokens": 10**9}, "sample_tokens=1000000000"),
    ("TranslationData", {"length_penalty": float("inf")}, "length_penalty=inf"),
])
def test_configs_check_every_field(cls, kwargs, message):
    from mindtf.models.transformer_config import TransformerConfig
    from mindtf.recipes.char_lm_setup import CharLMData
    from mindtf.recipes.translation_setup import TranslationData
    from mindtf.training.config import TrainConfig

    classes = {c.__name__: c for c in (TransformerConfig, TrainConfig, CharLMData,
                                       TranslationData)}
    with pytest.raises(ConfigError, match=message):
        classes[cls](**kwargs)


def test_numpy_and_list_ids_are_accepted_or_refused_clearly(ms_cpu):
    import mindtf

    gpt = mindtf.GPT(mindtf.GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=2,
                                      n_embd=8))
    a = gpt(np.array([[1, 2, 3]])).asnumpy()
    np.testing.assert_array_equal(gpt([[1, 2, 3]]).asnumpy(), a)
    np.testing.assert_array_equal(gpt(np.array([[1, 2, 3]], np.int64)).asnumpy(), a)
    with pytest.raises(InputError, match="must be integers"):
        gpt(np.array([[1.5, 2.0]]))
    with pytest.raises(InputError, match="rows of different lengths"):
        mindtf.generate(gpt, [[1, 2], [3]], 2)
    with pytest.raises(InputError, match="must be integers"):
        mindtf.generate(gpt, np.array([[1.5, 2.0]]), 2)
    t = mindtf.Transformer(mindtf.TransformerConfig(
        src_vocab_size=10, tgt_vocab_size=10, d_model=8, n_heads=2, n_encoder_layers=1,
        n_decoder_layers=1, d_ff=8))
    t.set_train(False)
    assert t([[3, 4, 5]], np.array([[2, 6]])).shape == (1, 2, 10)


def test_causal_mask_needs_whole_numbers():
    import mindtf

    with pytest.raises(InputError, match=r"causal_mask t_q=2.5: must be an integer >= 1"):
        mindtf.causal_mask(2.5)
    assert mindtf.causal_mask(np.int64(3)).shape == (3, 3)


def test_garbage_config_json_is_a_checkpoint_error(tmp_path):
    from mindtf.models.registry import load_model

    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="holds a JSON list"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "gpt2", "mindtf": {"n_layer": -1}}')
    with pytest.raises(CheckpointError, match="does not describe a GPT.*n_layer=-1"):
        load_model(tmp_path)
