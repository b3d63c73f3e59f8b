"""Build the lesson notebooks from the cell lists below (``python lessons/make_lessons.py``).

Notebooks are generated so that their text stays reviewable in git diffs; run them with
``jupyter nbconvert --execute --inplace lessons/*.ipynb`` (or ``pytest -m slow``) to refresh the
saved outputs.
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """import os
os.environ.setdefault("GLOG_v", "4")  # before MindSpore is imported: keep its C++ logs quiet
import numpy as np
import matplotlib.pyplot as plt
import mindtf
from mindspore import Tensor
info = mindtf.setup(device="auto", mode="pynative", seed=0)
print(info)"""

LESSON_01 = [
    ("md", """# Lesson 1 · Attention (注意力) and masks (掩码)

**Goal.** By the end of this lesson you can compute scaled dot-product attention by hand, build
the two masks every Transformer needs — the padding mask (填充掩码) and the causal mask
(因果掩码) — and read an attention map.

**Hardware and time.** Runs on a laptop CPU in under a minute (measured: 2-core x86 VM, about
20 s including MindSpore's start-up). Nothing is downloaded.

Everything here comes from the `mindtf` package; the lesson shows how to *use* and *inspect*
it, and the source (`mindtf/attention.py`, `mindtf/masks.py`) is short enough to read next."""),
    ("code", SETUP),
    ("md", """## 1. The intuition

Each position asks a question (a **query**, 查询), every position offers a label (a **key**, 键)
and a payload (a **value**, 值). Attention scores every key against the query, turns the scores
into weights with a softmax, and returns the weighted average of the values:

$$\\mathrm{Attention}(Q, K, V) = \\mathrm{softmax}\\!\\left(\\frac{QK^\\top}{\\sqrt{d}}\\right) V$$

Dividing by $\\sqrt{d}$ keeps the scores of wide vectors from saturating the softmax."""),
    ("code", """rng = np.random.default_rng(0)
q = rng.standard_normal((1, 4, 8)).astype(np.float32)   # (B, T_q, d)
k = rng.standard_normal((1, 6, 8)).astype(np.float32)   # (B, T_k, d)
v = rng.standard_normal((1, 6, 8)).astype(np.float32)   # (B, T_k, d)

out, w = mindtf.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), return_weights=True)
print("output", out.shape, " weights", w.shape)
print("each row of weights sums to", w.asnumpy().sum(-1).round(4))

# the same by hand, in numpy
s = q @ k.transpose(0, 2, 1) / np.sqrt(8)
p = np.exp(s - s.max(-1, keepdims=True)); p /= p.sum(-1, keepdims=True)
print("max difference to numpy:", np.abs(p @ v - out.asnumpy()).max())"""),
    ("md", """## 2. Masks: True means "may attend"

A batch pads short sentences with a `<pad>` id. Queries must not look at padding keys: that is
the **padding mask**. A language model must not look at the future: that is the **causal mask**.
In mindtf a mask is boolean and **True means "may attend"** (PyTorch's `nn.MultiheadAttention`
uses the opposite convention)."""),
    ("code", """PAD = 0
ids = np.array([[5, 7, 9, 2, PAD, PAD],
                [4, 8, 3, 6, 1, 2]])
pm = mindtf.padding_mask(ids, PAD)          # (B, 1, 1, T): broadcast over heads and queries
cm = mindtf.causal_mask(6)                  # (T, T)
both = pm.asnumpy() & cm.asnumpy()          # (B, 1, T, T)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
for ax, m, title in zip(axes, [np.broadcast_to(pm.asnumpy()[0, 0], (6, 6)), cm.asnumpy(), both[0, 0]],
                        ["padding mask (sentence 0)", "causal mask", "padding & causal"]):
    ax.imshow(m, cmap="Greens", vmin=0, vmax=1)
    ax.set_title(title); ax.set_xlabel("key position"); ax.set_ylabel("query position")
plt.tight_layout(); plt.show()"""),
    ("md", """Green cells are allowed. Row *i* of the causal mask lets position *i* see positions
0…*i*; the padding mask blanks the last two columns of sentence 0 for every query.

## 3. An attention map

Now a real multi-head attention layer (多头注意力) with random weights. We ask for the weights to
draw them; with the causal mask the upper triangle must be exactly zero."""),
    ("code", """mha = mindtf.MultiHeadAttention(d_model=16, n_heads=2)
mha.set_train(False)
x = Tensor(rng.standard_normal((2, 6, 16)).astype(np.float32))
y, weights = mha(x, mask=Tensor(both), return_weights=True)   # weights: (B, H, T, T)
wt = weights.asnumpy()
print("weight above the diagonal:", float(np.triu(wt[0, 0], 1).sum()))
print("weight on padding keys of sentence 0:", float(wt[0, :, :, 4:].sum()))

fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
for h in range(2):
    axes[h].imshow(wt[0, h], cmap="viridis"); axes[h].set_title(f"head {h}, sentence 0")
    axes[h].set_xlabel("key"); axes[h].set_ylabel("query")
plt.tight_layout(); plt.show()"""),
    ("md", """## 4. A row with nothing to see

What if a query may attend to *no* key (a sentence made only of padding)? A naive softmax over
$-\\infty$ gives NaN, which then spreads through the whole network — one way a training run ends
in NaN. mindtf returns zero weights for such rows instead:"""),
    ("code", """nothing = np.zeros((1, 1, 6), dtype=bool)                # (B, T_q | 1, T_k): no key visible
o, w0 = mindtf.scaled_dot_product_attention(x[:1], x[:1], x[:1], Tensor(nothing), return_weights=True)
print("finite:", bool(np.isfinite(o.asnumpy()).all()), " weights sum:", float(w0.asnumpy().sum()))"""),
    ("md", """## Exercise

1. Build the mask for a decoder that has already cached 3 positions and now receives 2 new
   ones: `mindtf.causal_mask(2, 5)`. Draw it. Which keys can the last query see?
2. Change `d_model` to 15 with 2 heads. Read the error message: what does it ask you to do?
3. Replace the `1/sqrt(d)` scaling in the numpy version by 1 and compare the softmax weights
   for `d = 512`: what happens to their entropy?

**Expected results** (CPU, seed 0): row sums of 1.0, a numpy difference below 1e-6, zero weight
above the diagonal and on padding keys, and `finite: True` for the empty row."""),
]

LESSONS = {"01_attention_and_masks.ipynb": LESSON_01}


def build() -> None:
    for name, cells in LESSONS.items():
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    build()
