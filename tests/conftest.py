"""Shared test setup.

* MindSpore's C++ logging is set to ERROR before anything imports it (GLOG_v=3).
* ``shared_data`` locates the read-only dataset mirror: ``$MINDTF_DATA_MIRROR`` or
  ``<repo>/../shared/data``; tests that need it skip with the reason when it is absent.
  Tests never use the internet.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_v", "3")

REPO = Path(__file__).resolve().parent.parent


def _mirror() -> Path | None:
    env = os.environ.get("MINDTF_DATA_MIRROR", "").split(",")[0].strip()
    for cand in (env, str(REPO.parent / "shared" / "data")):
        if cand and "://" not in cand and Path(cand).is_dir():
            return Path(cand).resolve()
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _mirror()
    if path is None:
        pytest.skip("dataset mirror not found: set MINDTF_DATA_MIRROR or place ../shared/data")
    return path


@pytest.fixture(scope="session")
def ms_cpu():
    """MindSpore on CPU, PyNative, seeded (the default for tests)."""
    import mindtf

    return mindtf.setup(device="cpu", mode="pynative", seed=0)


@pytest.fixture(autouse=True)
def _pynative_between_tests():
    """Every test starts and ends in PyNative mode, whatever the one before did."""
    import sys

    yield
    ms = sys.modules.get("mindspore")
    if ms is not None and ms.get_context("mode") != ms.PYNATIVE_MODE:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture()
def torch_ref():
    """PyTorch (tests only), deterministic and on 2 threads."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    torch.set_num_threads(2)
    return torch


@pytest.fixture
def graph_mode(ms_cpu):
    """Compile in GRAPH_MODE for the duration of one test, then go back to PyNative."""
    import mindspore as ms

    import mindtf

    mindtf.setup(device="cpu", mode="graph", seed=0)
    assert ms.get_context("mode") == ms.GRAPH_MODE
    try:
        yield
    finally:
        mindtf.setup(device="cpu", mode="pynative", seed=0)
