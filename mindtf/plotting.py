"""Figures: training curves, masks, positional encodings, schedules and attention maps.

matplotlib is imported inside each function with the non-interactive ``Agg`` backend unless a
backend was already chosen (a notebook's inline backend is kept).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

__all__ = ["plot_training", "plot_matrix", "plot_schedule"]


def _plt():
    import matplotlib

    if "MPLBACKEND" not in os.environ and matplotlib.get_backend().lower() not in (
            "module://matplotlib_inline.backend_inline", "nbagg", "widget", "ipympl"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training(metrics_jsonl: Union[str, os.PathLike], out_png: Union[str, os.PathLike]
                  ) -> Optional[Path]:
    """Training loss, validation loss and learning rate from a metrics log -> PNG."""
    path = Path(metrics_jsonl)
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    # a resumed run appends: keep the last value logged for each step
    train = {r["step"]: r for r in rows if "loss" in r}
    val = {r["step"]: r for r in rows if "val_loss" in r}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        s = sorted(train)
        ax.plot(s, [train[k]["loss"] for k in s], label="train loss", lw=1)
    if val:
        s = sorted(val)
        ax.plot(s, [val[k]["val_loss"] for k in s], "o-", label="validation loss")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.grid(alpha=0.3)
    if train:
        ax2 = ax.twinx()
        s = sorted(train)
        ax2.plot(s, [train[k]["lr"] for k in s], color="tab:gray", ls="--", lw=1,
                 label="learning rate")
        ax2.set_ylabel("learning rate")
        lines = ax.get_lines() + ax2.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], loc="upper right")
    fig.tight_layout()
    out = Path(out_png)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def plot_matrix(m, title: str = "", xlabel: str = "", ylabel: str = "",
                xticks: Optional[Sequence[str]] = None, yticks: Optional[Sequence[str]] = None,
                ax=None, cmap: str = "viridis"):
    """Draw a 2-D array (a mask, an attention map, an encoding table) with a colour bar."""
    plt = _plt()
    arr = m.asnumpy() if hasattr(m, "asnumpy") else np.asarray(m)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(arr.astype(float), cmap=cmap, aspect="auto")
    ax.figure.colorbar(im, ax=ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if xticks is not None:
        ax.set_xticks(range(len(xticks)), xticks, rotation=90)
    if yticks is not None:
        ax.set_yticks(range(len(yticks)), yticks)
    return ax


def plot_schedule(schedule, steps: int, ax=None, label: Optional[str] = None):
    """Plot ``schedule(step)`` for ``step`` in ``[0, steps)``."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.plot(np.arange(steps), [schedule(s) for s in range(steps)], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    return ax
