# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 1 · Attention (注意力) and masks (掩码)
#
# **Goal.** By the end of this lesson you can compute scaled dot-product attention
# (缩放点积注意力) by hand, build the two masks every Transformer needs — the padding mask
# (填充掩码) and the causal mask (因果掩码) — read an attention map, and say why the scores are
# divided by $\sqrt{d}$.
#
# **Hardware and time.** A laptop CPU is enough: about 10 s on a 2-core x86 VM, most of it
# MindSpore's start-up. Nothing is downloaded.
#
# Everything here comes from the `mindtf` package: the lesson shows how to *use* and *inspect*
# it, and the source (`mindtf/nn/attention.py`, `mindtf/nn/masks.py`) is short enough to read
# next.

# %% tags=["parameters"]
import os

SMOKE = os.environ.get("MINDTF_LESSON_SMOKE") == "1"  # the tests' quick run: smaller sizes
SEED = 0
D_MODEL, N_HEADS = 16, 2  # the multi-head layer of section 3
WIDTHS = [4, 16, 64, 256] if SMOKE else [4, 16, 64, 256, 1024, 4096]  # widths d of section 5
N_QUERIES = 256 if SMOKE else 4096  # random queries per width in section 5
N_KEYS = 32  # keys each query chooses from in section 5

# %%
# MindSpore reads its C++ log level once, when it is first imported: 3 = errors only (no warnings
# about absent GPU/Ascend plugins). Set it before the first `import mindspore`.
os.environ.setdefault("GLOG_v", "3")

import matplotlib.pyplot as plt
import numpy as np
from mindspore import Tensor

import mindtf

info = mindtf.setup(device="auto", mode="pynative", seed=SEED)
print(info)
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## 1. The intuition
#
# Each position asks a question (a **query**, 查询), and every position offers a label (a
# **key**, 键) and a payload (a **value**, 值). Attention scores every key against the query,
# turns the scores into weights with a softmax, and returns the weighted average of the values:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d}}\right) V$$
#
# With $T_q$ queries and $T_k$ keys of width $d$, $QK^\top$ is a $T_q \times T_k$ table of scores
# and each row of the softmax is a probability distribution over the keys. Section 5 shows why
# the scores are divided by $\sqrt{d}$.

# %%
q = rng.standard_normal((1, 4, 8)).astype(np.float32)  # (B, T_q, d)
k = rng.standard_normal((1, 6, 8)).astype(np.float32)  # (B, T_k, d)
v = rng.standard_normal((1, 6, 8)).astype(np.float32)  # (B, T_k, d)

out, w = mindtf.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v),
                                             return_weights=True)
print("output", out.shape, " weights", w.shape)
print("each row of weights sums to", w.asnumpy().sum(-1).round(4))

# the same by hand, in numpy
scores = q @ k.transpose(0, 2, 1) / np.sqrt(8)  # (B, T_q, T_k)
p = np.exp(scores - scores.max(-1, keepdims=True))  # subtract the row max: no overflow
p /= p.sum(-1, keepdims=True)
print("max difference to numpy:", np.abs(p @ v - out.asnumpy()).max())

# %% [markdown]
# ## 2. Masks: True means "may attend"
#
# A batch pads its short sentences with a `<pad>` id up to the longest one. Queries must not
# look at padding keys: that is the **padding mask**. A language model must not look at the
# future, or predicting the next token would be copying it: that is the **causal mask**.
#
# In mindtf a mask is boolean and **True means "may attend"**. (PyTorch's
# `nn.MultiheadAttention` uses the opposite convention, True = blocked: flip a mask with `~`
# when you move it between the two.)

# %%
PAD = 0
ids = np.array([[5, 7, 9, 2, PAD, PAD],  # sentence 0: 4 tokens and 2 pads
                [4, 8, 3, 6, 1, 2]])     # sentence 1: 6 tokens
pm = mindtf.padding_mask(ids, PAD)  # (B, 1, 1, T): broadcast over heads and queries
cm = mindtf.causal_mask(6)          # (T, T)
both = pm.asnumpy() & cm.asnumpy()  # (B, 1, T, T)

panels = {
    "padding mask (sentence 0)": np.broadcast_to(pm.asnumpy()[0, 0], (6, 6)),
    "causal mask": cm.asnumpy(),
    "padding & causal (sentence 0)": both[0, 0],
}
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
for ax, (title, m) in zip(axes, panels.items()):
    ax.imshow(m, cmap="Greens", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
plt.tight_layout()
plt.show()

# %% [markdown]
# Green cells are allowed. Row $i$ of the causal mask lets position $i$ see positions
# $0 \dots i$; the padding mask blanks the last two columns of sentence 0 for every query.
# The combined mask has shape $(B, 1, T, T)$: the `1` broadcasts over the heads.
#
# ## 3. An attention map
#
# Now a real multi-head attention layer (多头注意力) with random weights: it projects the input
# into `N_HEADS` separate queries, keys and values, runs attention once per head, and mixes the
# heads' outputs. We ask for the weights to draw them; with the combined mask, the upper
# triangle and the padding columns must be exactly zero.

# %%
mha = mindtf.MultiHeadAttention(d_model=D_MODEL, n_heads=N_HEADS)
mha.set_train(False)  # inference: no dropout
x = Tensor(rng.standard_normal((2, 6, D_MODEL)).astype(np.float32))  # (B, T, D)
y, weights = mha(x, mask=Tensor(both), return_weights=True)  # weights: (B, H, T, T)
wt = weights.asnumpy()
print("output", y.shape, " weights", wt.shape)
print("weight above the diagonal:", float(np.triu(wt[0], 1).sum()))
print("weight on padding keys of sentence 0:", float(wt[0, :, :, 4:].sum()))

fig, axes = plt.subplots(1, N_HEADS, figsize=(4 * N_HEADS, 3.2))
for h, ax in enumerate(np.atleast_1d(axes)):
    ax.imshow(wt[0, h], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"head {h}, sentence 0")
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
plt.tight_layout()
plt.show()

# %% [markdown]
# Each head spreads its weight differently over the visible keys: heads are free to look for
# different things. Query 0 sees only key 0, so its row is a single bright cell in every head.
#
# ## 4. A row with nothing to see
#
# What if a query may attend to *no* key (a sentence made only of padding)? A naive softmax over
# a row of $-\infty$ gives $0/0 = $ NaN, which then spreads through the whole network: one way a
# training run ends in NaN. mindtf returns zero weights, and so a zero output, for such rows:

# %%
nothing = np.zeros((1, 1, 6), dtype=bool)  # (B, T_q | 1, T_k): no key visible
o, w0 = mindtf.scaled_dot_product_attention(x[:1], x[:1], x[:1], Tensor(nothing),
                                            return_weights=True)
print("finite:", bool(np.isfinite(o.asnumpy()).all()), " weights sum:", float(w0.asnumpy().sum()))


# %% [markdown]
# ## 5. Why divide by $\sqrt{d}$
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, the score
# $q \cdot k = \sum_{i=1}^{d} q_i k_i$ has variance $d$: the wider the vectors, the larger the
# scores. A softmax of large scores is almost one-hot (独热): one key takes all the weight and the
# gradient through the other keys vanishes, so the layer stops learning where to look. Dividing
# by $\sqrt{d}$ brings the variance back to 1 whatever the width.
#
# We measure it with the **entropy** (熵) of each row of weights,
# $H = -\sum_j p_j \log p_j$: $\log T_k$ for a uniform row, 0 for a one-hot row.
# `scaled_dot_product_attention` always scales, so to see attention *without* the scaling we
# multiply the queries by $\sqrt{d}$, which cancels it.

# %%
def mean_entropy(weights):
    """Average entropy (nats) of the rows of a (..., T_q, T_k) array of attention weights."""
    p = np.clip(weights, 1e-12, 1.0)
    return float(-(p * np.log(p)).sum(-1).mean())


entropy = {"scaled by 1/sqrt(d)": [], "not scaled": []}
for d in WIDTHS:
    qd = Tensor(rng.standard_normal((1, N_QUERIES, d)).astype(np.float32))  # (B, T_q, d)
    kd = Tensor(rng.standard_normal((1, N_KEYS, d)).astype(np.float32))     # (B, T_k, d)
    for name, scale in [("scaled by 1/sqrt(d)", 1.0), ("not scaled", float(np.sqrt(d)))]:
        _, wd = mindtf.scaled_dot_product_attention(qd * scale, kd, kd, return_weights=True)
        entropy[name].append(mean_entropy(wd.asnumpy()))

for name, values in entropy.items():
    print(f"{name:>20}:", "  ".join(f"d={d}: {h:.2f}" for d, h in zip(WIDTHS, values)))

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, values in entropy.items():
    ax.plot(WIDTHS, values, "o-", label=name)
ax.axhline(np.log(N_KEYS), color="gray", ls="--", lw=1, label=f"uniform: log {N_KEYS}")
ax.set_xscale("log", base=2)
ax.set_xlabel("width d of queries and keys")
ax.set_ylabel("entropy of a row (nats)")
ax.set_ylim(bottom=0)
ax.legend()
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# With the scaling, the entropy stays at the same level for every width; without it, it falls
# towards 0 as $d$ grows: each query puts nearly all its weight on a single key.
#
# ## Exercise
#
# 1. Build the mask for a decoder that has already cached 3 positions and now receives 2 new
#    ones: `mindtf.causal_mask(2, 5)`. Draw it. Which keys can the last query see?
# 2. Make `MultiHeadAttention(d_model=15, n_heads=2)`. Read the error message: what does it ask
#    you to do?
# 3. In section 5, divide the scores by $d$ instead of $\sqrt{d}$ (multiply the queries by
#    $1/\sqrt{d}$). What happens to the entropy as $d$ grows, and why is that bad as well?
#
# **Expected results** (CPU, seed 0): rows of weights that sum to 1.0, a difference to numpy
# below 1e-6, zero weight above the diagonal and on the padding keys, `finite: True` with a
# weight sum of 0.0 for the empty row. In section 5, about 3.0 nats for every width with the
# scaling (a uniform row would have $\log 32 \approx 3.47$); without it, 2.4 nats at $d = 4$,
# 0.5 at $d = 64$ and about 0.1 at $d = 1024$.
