"""Runtime setup, the env report and the import contract."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mindtf
from mindtf import runtime


def test_import_is_lazy_and_offline():
    """`import mindtf` imports neither MindSpore nor any network module."""
    code = ("import sys, mindtf; bad = [m for m in ('mindspore', 'urllib.request', 'http.client', "
            "'requests') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_setup_picks_cpu_and_reports(ms_cpu):
    info = mindtf.setup(device="auto", mode="pynative", seed=123)
    assert info.device == "CPU" and info.mode == "pynative" and info.seed == 123
    assert info.threads is not None and info.threads >= 1
    assert "device=CPU" in str(info)
    a = np.random.rand()
    mindtf.setup(device="cpu", seed=123)
    assert np.random.rand() == a  # seeding is reproducible
    assert mindtf.available_devices()[-1] == "CPU"


def test_setup_rejects_bad_arguments(ms_cpu):
    with pytest.raises(ValueError, match="device='tpu'"):
        mindtf.setup(device="tpu")
    with pytest.raises(ValueError, match="mode='eager'"):
        mindtf.setup(mode="eager")
    if "GPU" not in mindtf.available_devices():
        with pytest.raises(ValueError, match="not available to this MindSpore build"):
            mindtf.setup(device="gpu")


def test_thread_count_cannot_change_silently(ms_cpu):
    info = mindtf.setup(device="cpu")
    other = info.threads + 1
    with pytest.warns(UserWarning, match="cannot change them"):
        mindtf.setup(device="cpu", threads=other)


def test_pynative_context_restores_mode(ms_cpu):
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        with runtime.pynative():
            assert ms.get_context("mode") == ms.PYNATIVE_MODE
        assert ms.get_context("mode") == ms.GRAPH_MODE
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def test_env_report_warns_with_fixes(monkeypatch):
    rows, problems = runtime.env_report()
    keys = dict(rows)
    for k in ("python", "mindtf", "numpy", "mindspore", "devices available"):
        assert k in keys
    assert problems == []  # this machine is set up as the README says
    monkeypatch.setattr(np, "__version__", "2.1.0")
    import mindspore

    monkeypatch.setattr(mindspore, "__version__", "2.3.1")
    _, problems = runtime.env_report()
    text = "\n".join(problems)
    assert "pip install 'numpy<2'" in text
    assert "outside the supported range" in text and "mindspore==2.10.0" in text
    assert dict(rows)["tested combination"] == "yes"  # the first report, before the patches


def test_setup_warns_about_an_untested_mindspore(ms_cpu, monkeypatch):
    import warnings

    import mindspore

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mindtf.setup(device="cpu")  # this cell is tested: no warning
    monkeypatch.setattr(mindspore, "__version__", "2.7.1")
    with pytest.warns(UserWarning, match="2.7.1 on Python .* not tested"):
        mindtf.setup(device="cpu")
    monkeypatch.setattr(mindspore, "__version__", "2.6.0")
    with pytest.warns(UserWarning, match="outside the supported range"):
        mindtf.setup(device="cpu")


def test_env_command_json():
    env = {**os.environ, "GLOG_v": "3"}
    out = subprocess.run([sys.executable, "-m", "mindtf", "env", "--json"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    from importlib.metadata import version

    assert data["info"]["mindspore"] == version("mindspore") and data["warnings"] == []
    assert data["info"]["tested combination"] == "yes"


def test_every_public_name_resolves():
    for name in mindtf.__all__:
        assert getattr(mindtf, name) is not None, name
