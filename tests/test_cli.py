"""The ``python -m mindtf`` command line: help for every command, config precedence and errors,
and a tiny ``train --task char-lm`` -> ``generate`` -> ``train --resume`` run."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
import yaml

from mindtf.cli.main import COMMANDS, main
from mindtf.config import RUN_CONFIG, field_comments, read_run_config, write_run_config
from mindtf.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

KEY_OPTIONS = {
    "env": ["--json"],
    "fetch": ["--list", "--mirror", "--offline"],
    "train": ["--task", "char-lm", "translation", "--config", "--resume", "--print-config",
              "--model.n_layer", "--model.d_model", "--train.max_steps", "--train.lr",
              "--data.text_file", "--data.max_train_pairs", "--device", "--offline",
              "examples:", "defaults < the --config file < flags"],
    "generate": ["--checkpoint", "--prompt", "--temperature"],
    "translate": ["--checkpoint", "--beam", "--input", "SENTENCE", "examples:"],
    "quickstart": ["--steps", "--mode"],
    "ladder": ["--out", "--gpt-run", "--smoke", "--nnlm-steps", "--mirror", "examples:"],
}


def _help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_of_every_command(command, capsys):
    text = _help(command, capsys)
    for option in KEY_OPTIONS[command]:
        assert option in text, f"{command} --help does not mention {option}"


def test_top_level_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


def test_train_help_groups_options_by_task(capsys):
    text = _help("train", capsys)
    assert "model options for --task char-lm (GPTConfig)" in text
    assert "model options for --task translation (TransformerConfig)" in text
    assert "training options, both tasks (TrainConfig)" in text
    assert "data options for --task translation (TranslationData)" in text
    assert "(default: None)" not in text


def test_train_help_is_the_fields_own_comments(capsys):
    from mindtf.cli import train

    text = " ".join(_help("train", capsys).split())  # argparse wraps lines
    seen = set()  # a field both tasks have gets one flag, with the first task's comment
    for sections in train._classes().values():
        for section, cls in sections.items():
            for name, comment in field_comments(cls).items():
                if (section, name) not in seen:
                    seen.add((section, name))
                    assert f"--{section}.{name} V {' '.join(comment.split())} (default:" in text


def test_every_train_field_has_a_comment():
    from mindtf.cli import train

    classes = {cls for sections in train._classes().values() for cls in sections.values()}
    missing = sorted(f"{cls.__name__}.{f.name}" for cls in classes
                     for f in dataclasses.fields(cls) if f.name not in field_comments(cls))
    assert not missing, f"write a '# comment' after these fields (their --help): {missing}"


@dataclasses.dataclass
class Base:
    """A docstring with a colon: and a line that looks like a field
    width: int = 3  # not a field"""

    width: int = 3  # model width
    depth: int = 2
    # a comment above a field is not its help
    rate: Optional[float] = None  # a comment that goes on
                                  # over two lines
    label: str = "#1"

    def method(self):  # not a field
        inner: int = 1  # not a field either
        return inner


@dataclasses.dataclass
class Child(Base):
    depth: int = 4  # blocks


def test_field_comments():
    assert field_comments(Base) == {"width": "model width",
                                    "rate": "a comment that goes on over two lines"}
    assert field_comments(Child) == {**field_comments(Base), "depth": "blocks"}


def test_run_config_round_trip(tmp_path):
    out = tmp_path / "run"
    path = write_run_config(out, {"task": "char-lm", "model": Child(), "train": {"lr": 1e-3},
                                  "data": {"sizes": (1, 2), "file": Path("a.txt")}})
    assert path == out / RUN_CONFIG and path.read_text().startswith("# ")
    assert read_run_config(out) == {"task": "char-lm",
                                    "model": {"width": 3, "depth": 4, "rate": None, "label": "#1"},
                                    "train": {"lr": 1e-3},
                                    "data": {"sizes": [1, 2], "file": "a.txt"}}
    write_run_config(out, {"model": {"width": 5}})  # replaced as a whole
    assert read_run_config(out) == {"model": {"width": 5}}
    assert sorted(p.name for p in out.iterdir()) == [RUN_CONFIG]  # no temporary file left
    with pytest.raises(ConfigError, match="not a run folder"):
        read_run_config(tmp_path / "nowhere")


def test_resume_starts_from_the_run_config(tmp_path, capsys):
    # a run config without 'task:': the task is the one whose model fields it has
    write_run_config(tmp_path, {"model": {"n_layer": 1, "n_embd": 16, "n_head": 2},
                                "train": {"max_steps": 5, "out_dir": str(tmp_path)},
                                "data": {"dataset": "file", "text_file": "t.txt"}})
    c = _print_config(capsys, "--resume", "--train.out_dir", str(tmp_path),
                      "--train.max_steps", "9")
    assert c["task"] == "char-lm" and c["model"]["n_embd"] == 16
    assert c["train"]["max_steps"] == 9 and c["data"]["text_file"] == "t.txt"
    assert main(["train", "--task", "translation", "--resume", "--train.out_dir", str(tmp_path),
                 "--print-config"]) == 1
    assert "is a char-lm run, not translation" in capsys.readouterr().err


def test_print_config_writes_nothing(tmp_path, capsys):
    _print_config(capsys, "--task", "char-lm", "--train.out_dir", str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_unknown_field_names_the_section_fields(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "char-lm", "--model.n_embed", "8"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m mindtf train" in err
    assert "unknown option --model.n_embed: not a model field. Did you mean --model.n_embd" in err
    with pytest.raises(SystemExit):
        main(["train", "--task", "char-lm", "--modle.n_embd", "8"])
    assert "settings are --model.FIELD" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["env", "--nonsense"])
    assert "unrecognized arguments: --nonsense" in capsys.readouterr().err


def test_top_level_help_imports_no_command():
    code = ("import sys; from mindtf.cli.main import main; main([]); "
            "print(sorted(m for m in sys.modules if m.startswith(('mindtf.cli.', 'mindspore'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['mindtf.cli.main']"


def _print_config(capsys, *argv):
    assert main(["train", *argv, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_config_precedence_defaults_file_flags(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("task: char-lm\n"
                   "model: {n_layer: 2, n_embd: 64}\n"
                   "train: {max_steps: 7, lr: 6e-4, batch_size: 3}\n"  # 6e-4: a YAML string
                   "data: {dataset: file, text_file: x.txt}\n")
    c = _print_config(capsys, "--config", str(cfg), "--train.max_steps", "3",
                      "--model.n_embd", "32", "--train.eval_max_batches", "none")
    assert c["task"] == "char-lm"
    assert c["train"]["max_steps"] == 3  # flag beats file
    assert c["model"]["n_embd"] == 32  # flag beats file
    assert c["model"]["n_layer"] == 2 and c["train"]["batch_size"] == 3  # file beats default
    assert c["train"]["lr"] == pytest.approx(6e-4)  # converted to a float
    assert c["model"]["n_head"] == 4 and c["model"]["block_size"] == 64  # quickstart defaults
    assert c["train"]["warmup_steps"] == 3  # default warmup kept within a short run
    assert c["train"]["eval_max_batches"] is None
    assert c["data"]["text_file"] == "x.txt"
    t = _print_config(capsys, "--task", "translation")
    model = t["model"]
    assert (model["d_model"], model["n_encoder_layers"], model["d_ff"]) == (256, 3, 512)
    assert t["train"]["label_smoothing"] == 0.1 and t["data"]["min_freq"] == 2


@pytest.mark.parametrize("content,message", [
    ("train: {nonsense: 1}\n", "unknown train fields in the config file: ['nonsense']"),
    ("modle: {n_layer: 1}\n", "unknown sections ['modle']"),
    ("train: {max_steps: many}\n", "train.max_steps: expected int, got 'many'"),
    ("train: {schedule: linear}\n", "schedule='linear'"),
])
def test_bad_config_file_is_one_clear_line(tmp_path, capsys, content, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    assert main(["train", "--task", "char-lm", "--config", str(cfg), "--print-config"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_field_of_the_other_task_and_missing_task(capsys):
    assert main(["train", "--task", "translation", "--model.n_embd", "8", "--print-config"]) == 1
    err = capsys.readouterr().err
    assert "--model.n_embd" in err and "TransformerConfig" in err and "d_model" in err
    assert main(["train", "--print-config"]) == 1
    assert "--task char-lm or --task translation" in capsys.readouterr().err


def test_unknown_flag_exits_2_without_traceback():
    env = {**os.environ, "GLOG_v": "3"}
    out = subprocess.run([sys.executable, "-m", "mindtf", "train", "--task", "char-lm",
                          "--train.max_stepz", "1"], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "unknown option --train.max_stepz" in out.stderr
    assert "Did you mean --train.max_steps" in out.stderr


# --------------------------------------------------------------------------- a tiny real run
TINY_MODEL = ["--model.n_layer", "1", "--model.n_head", "2", "--model.n_embd", "16",
              "--model.block_size", "16"]
TINY_TRAIN = ["--train.batch_size", "8", "--train.mode", "pynative", "--train.progress", "false",
              "--train.log_interval", "1", "--train.keep_last", "1"]


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("char_lm")
    text = tmp / "tiny.txt"
    text.write_text("the cat sat on the mat. the dog ate the hat.\n" * 40)  # 1,800 characters
    out = tmp / "run"
    code = main(["train", "--task", "char-lm", "--data.dataset", "file",
                 "--data.text_file", str(text), "--data.sample_tokens", "10",
                 *TINY_MODEL, *TINY_TRAIN, "--train.max_steps", "5",
                 "--train.eval_interval", "5", "--train.out_dir", str(out), "--device", "cpu"])
    assert code == 0
    return out


def test_train_char_lm_writes_a_run(char_run, capsys):
    summary = json.loads((char_run / "summary.json").read_text())
    assert summary["steps"] == 5 and summary["val_loss"] is not None
    best = char_run / "checkpoints" / "best"
    assert (best / "tokenizer.json").is_file() and (best / "model.safetensors").is_file()
    saved = yaml.safe_load((char_run / "config.yaml").read_text())
    assert saved["task"] == "char-lm" and saved["model"]["n_embd"] == 16
    assert main(["generate", "--checkpoint", str(best), "--prompt", "the ",
                 "--max-new-tokens", "8", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the ") and len(out.rstrip("\n")) >= 8


def test_resume_continues_from_the_saved_step(char_run, capsys):
    # no --task and no model flags: both come from the run's config.yaml
    assert main(["train", "--resume", "--train.out_dir", str(char_run),
                 "--train.max_steps", "7", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "resumed from step 5" in out
    assert json.loads((char_run / "summary.json").read_text())["steps"] == 7
    assert (char_run / "checkpoints" / "latest").read_text().strip() == "step_0000007"
    steps = [json.loads(line)["step"] for line in
             (char_run / "metrics.jsonl").read_text().splitlines()]
    assert steps.count(6) == 1 and steps[-1] == 7 and 5 in steps  # 6 and 7 once, after 5
    trainer = json.loads((char_run / "checkpoints" / "step_0000007" / "trainer.json").read_text())
    assert trainer["step"] == 7


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "--task", "char-lm", "--resume", "--train.out_dir", str(tmp_path / "x"),
                 "--device", "cpu"])
    assert code == 1
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.parametrize("name,task", [("char_gpt.yaml", "char-lm"),
                                       ("multi30k_transformer.yaml", "translation")])
def test_example_configs_are_valid(name, task, capsys):
    c = _print_config(capsys, "--config", str(REPO / "configs" / name))
    assert c["task"] == task
