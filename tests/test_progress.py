"""mindtf.progress: a tqdm bar on a terminal, one plain line per interval elsewhere, nothing
when off."""
import io

import pytest

from mindtf.errors import ConfigError
from mindtf.progress import ENV_VAR, format_value, progress, progress_mode


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def _train(p, steps):
    for step in range(1, steps + 1):
        p.set_postfix(loss=2.0 + 1 / step, lr=1e-3, tok_s=5400.0)
        p.update()


def test_not_a_terminal_prints_one_plain_line_per_interval():
    out = io.StringIO()
    with progress(total=20, desc="training", unit="step", log_every=5, file=out) as p:
        assert p.mode == "plain"
        _train(p, 20)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 4  # steps 5, 10, 15, 20; close adds nothing at step 20
    assert lines[0].startswith("training: step 5/20 (25%) loss=2.2 lr=1.0e-03 tok_s=5,400 "
                               "elapsed 0:00:00")
    assert lines[-1].startswith("training: step 20/20 (100%)") and "eta" not in lines[-1]


def test_plain_close_reports_the_end_and_resume_starts_from_initial():
    out = io.StringIO()
    p = progress(total=10, desc="training", unit="step", log_every=4, file=out, initial=3)
    _train(p, 3)  # 3 -> 6: passes 4
    p.write("step 6: val loss 1.23")
    p.close()
    p.close()  # closing twice prints nothing more
    first, message, last = out.getvalue().splitlines()
    assert message == "step 6: val loss 1.23"
    assert first.startswith("training: step 4/10 (40%)")
    assert last.startswith("training: step 6/10 (60%)")


def test_plain_default_interval_and_bytes():
    out = io.StringIO()
    with progress(total=4 << 20, desc="train.de.gz", unit="B", file=out) as p:
        for _ in range(64):
            p.update(1 << 16)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10  # a tenth of the job each
    assert lines[-1].startswith("train.de.gz: 4.0 MiB/4.0 MiB (100%)")
    out = io.StringIO()
    with progress(desc="unknown size", unit="B", file=out) as p:
        p.update(1000)
    assert out.getvalue().startswith("unknown size: 1000 B elapsed")  # only the closing line


def test_terminal_gets_a_tqdm_bar():
    tqdm = pytest.importorskip("tqdm")
    out = Terminal()
    with progress(total=3, desc="training", file=out) as p:
        assert p.mode == "bar" and isinstance(p.bar, tqdm.tqdm)
        p.update()


def test_forced_bar_uses_tqdm(monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setenv(ENV_VAR, "bar")
    out = io.StringIO()
    with progress(total=3, desc="training", file=out) as p:
        assert p.mode == "bar" and isinstance(p.bar, tqdm.tqdm)
        p.set_postfix(loss=2.5)
        p.update(3)
    assert "\r" in out.getvalue() and "loss=2.5" in out.getvalue()  # tqdm's frames


def test_forced_plain_on_a_terminal(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "plain")
    out = Terminal()
    with progress(total=2, log_every=1, file=out) as p:
        p.update(2)
    assert out.getvalue().startswith("2/2 (100%) elapsed")


@pytest.mark.parametrize("how", ["env", "disable"])
def test_off_prints_nothing(monkeypatch, how):
    if how == "env":
        monkeypatch.setenv(ENV_VAR, "off")
    for out in (io.StringIO(), Terminal()):
        with progress(total=10, desc="training", log_every=1, file=out,
                      disable=how == "disable") as p:
            assert p.mode == "off" and p.bar is None
            _train(p, 10)
        assert out.getvalue() == ""


def test_bad_override_says_the_choices(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "fancy")
    with pytest.raises(ConfigError, match="choose 'plain', 'bar' or 'off'"):
        progress_mode(io.StringIO())


def test_format_value():
    assert [format_value(v) for v in (2.3149, 1e-3, 5400.4, 12345, "x", True, 0.0)] == [
        "2.31", "1.0e-03", "5,400", "12,345", "x", "True", "0.0"]
