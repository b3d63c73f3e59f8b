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
# # Lesson 3 · Attention (注意力) and masks (掩码)
#
# **Goal.** By the end of this lesson you can compute scaled dot-product attention
# (缩放点积注意力) by hand, build the two masks every Transformer needs — the padding mask
# (填充掩码) and the causal mask (因果掩码) —, read an attention map, compare additive attention
# (加性注意力) with dot-product attention (点积注意力), and say why the scores are divided by
# $\sqrt{d}$.
#
# **Hardware and time.** A laptop CPU is enough: about 10 s on a 2-core x86 VM (see *Expected
# results* at the end). Nothing is downloaded.
#
# Everything here comes from the `mindtf` package: the lesson shows how to *use* and *inspect*
# it, and the source (`mindtf/nn/attention.py`, `mindtf/nn/masks.py`) is short enough to read
# next.

# %% tags=["parameters"]
import os

SMOKE = os.environ.get("MINDTF_LESSON_SMOKE") == "1"  # the tests' quick run: smaller sizes
SEED = 0
D_MODEL, N_HEADS = 16, 2  # the multi-head layer of section 3
TIMING_LENGTHS = [32, 128] if SMOKE else [32, 128, 512]  # sequence lengths timed in section 5
WIDTHS = [4, 16, 64, 256] if SMOKE else [4, 16, 64, 256, 1024, 4096]  # widths d of section 6
N_QUERIES = 256 if SMOKE else 4096  # random queries per width in section 6
N_KEYS = 32  # keys each query chooses from in section 6

# %%
import time

START = time.perf_counter()
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
# turns the scores into weights with a softmax (归一化指数函数), and returns the weighted average
# of the values:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d}}\right) V$$
#
# With $T_q$ queries and $T_k$ keys of width $d$, $QK^\top$ is a $T_q \times T_k$ table of scores
# and each row of the softmax is a probability distribution over the keys. Section 6 shows why
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

# %% tags=["figure:03_masks"]
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

# %% tags=["figure:03_heads"]
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
# **What to look for.** Each head spreads its weight differently over the visible keys: heads
# are free to look for different things. Query 0 sees only key 0, so its row is a single bright
# cell in every head, and the last two columns (padding) stay dark.
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
# ## 5. Additive vs dot-product attention
#
# Attention entered machine translation in 2015 as **additive attention** (Bahdanau et al.):
# a small feed-forward network scores each (query, key) pair,
#
# $$e_{ij} = w^\top \tanh(W_q\, q_i + W_k\, k_j), \qquad
# \alpha_{ij} = \frac{\exp e_{ij}}{\sum_{j'} \exp e_{ij'}}, \qquad
# c_i = \sum_j \alpha_{ij}\, v_j ,$$
#
# with trainable $W_q \in \mathbb{R}^{h \times d_q}$, $W_k \in \mathbb{R}^{h \times d_k}$ and
# $w \in \mathbb{R}^{h}$. **Dot-product attention** (Luong et al., 2015; scaled by Vaswani et al.,
# 2017) replaces that network with $e_{ij} = q_i \cdot k_j / \sqrt{d}$: no parameters of its
# own (the projections live in the multi-head layer around it), and the whole score table is
# one matrix product, $QK^\top$.
#
# | | additive | scaled dot-product |
# |---|---|---|
# | score | $w^\top \tanh(W_q q + W_k k)$ | $q \cdot k / \sqrt{d}$ |
# | parameters | $h(d_q + d_k + 1)$ | none |
# | query and key widths | may differ | must be equal |
# | largest intermediate | $(B, T_q, T_k, h)$ | $(B, T_q, T_k)$ |
#
# `mindtf.AdditiveAttention(query_dim, key_dim, hidden_dim)` returns the context and the
# weights. Both kinds draw a probability distribution over the keys for each query:

# %% tags=["figure:03_additive"]
add = mindtf.AdditiveAttention(query_dim=8, key_dim=8, hidden_dim=16)
ctx_add, w_add = add(Tensor(q), Tensor(k), Tensor(v))  # (B, T_q, d), (B, T_q, T_k)
n_add = sum(int(np.prod(p.shape)) for p in add.trainable_params())
print("additive: context", ctx_add.shape, " weights", w_add.shape, " parameters", n_add)
print("rows sum to", w_add.asnumpy().sum(-1).round(4))

fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
for ax, (title, m) in zip(axes, [("scaled dot-product", w.asnumpy()[0]),
                                 ("additive (random weights)", w_add.asnumpy()[0])]):
    ax.imshow(m, cmap="viridis", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
plt.tight_layout()
plt.show()

# %% [markdown]
# The two maps differ, as they should: the dot product compares the raw vectors, the additive
# score compares them through its (here untrained) network. Trained, both learn where to look.
# The difference that matters in practice is the cost. Additive attention builds a
# $(B, T_q, T_k, h)$ tensor of $\tanh$ features; the dot product goes straight to the
# $(B, T_q, T_k)$ scores with one matrix multiplication, the operation accelerators are built
# for. We time both on self-attention over $T$ positions of width 64 (your numbers will differ;
# the ratio is what to look at):

# %%
def per_call_ms(fn, repeats=5):
    """Median wall time of ``fn()`` in milliseconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


add64 = mindtf.AdditiveAttention(query_dim=64, key_dim=64, hidden_dim=64)
for t_len in TIMING_LENGTHS:
    xs = Tensor(rng.standard_normal((1, t_len, 64)).astype(np.float32))  # (B, T, d)
    ms_dot = per_call_ms(lambda x=xs: mindtf.scaled_dot_product_attention(x, x, x).asnumpy())
    ms_add = per_call_ms(lambda x=xs: add64(x, x, x)[0].asnumpy())
    print(f"T={t_len:4d}: dot-product {ms_dot:7.2f} ms   additive {ms_add:8.2f} ms   "
          f"(x{ms_add / ms_dot:.1f})   additive features: {t_len * t_len * 64:>10,} floats")

# %% [markdown]
# The gap grows with $T$: the additive features grow as $T^2 h$, and each element passes
# through a $\tanh$. (At small $T$ both calls are dominated by fixed overheads of a few
# milliseconds, so the first ratios jump around from run to run.) Vaswani et al. note that for
# small $d$ the two kinds of score work about equally well, and that for large $d$ *unscaled*
# dot products do worse than additive attention — which is what the $1/\sqrt{d}$ is for.
#
# ## 6. Why divide by $\sqrt{d}$
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, the score
# $q \cdot k = \sum_{i=1}^{d} q_i k_i$ has variance $d$: the wider the vectors, the larger the
# scores. A softmax of large scores saturates (饱和): it is almost one-hot (独热), one key takes
# all the weight. Its gradient (梯度), $\partial \alpha_j / \partial e_j = \alpha_j (1 - \alpha_j)$,
# is then close to 0 for every key, so the layer stops learning where to look. Dividing by
# $\sqrt{d}$ brings the variance of the scores back to 1 whatever the width.
#
# First one query and 8 keys of width $d = 512$, with and without the scaling:

# %% tags=["figure:03_saturation"]
d_big = 512
q1 = Tensor(rng.standard_normal((1, 1, d_big)).astype(np.float32))  # (B, T_q=1, d)
k8 = Tensor(rng.standard_normal((1, 8, d_big)).astype(np.float32))  # (B, T_k=8, d)
# scaled_dot_product_attention always scales; multiplying the queries by sqrt(d) cancels it
rows = {"scaled by 1/sqrt(d)": 1.0, "not scaled": float(np.sqrt(d_big))}
fig, axes = plt.subplots(1, 2, figsize=(8, 2.6), sharey=True)
for ax, (name, factor) in zip(axes, rows.items()):
    _, row = mindtf.scaled_dot_product_attention(q1 * factor, k8, k8, return_weights=True)
    row = row.asnumpy()[0, 0]  # (T_k,)
    ax.bar(range(8), row)
    ax.set_title(f"{name}: largest gradient {float((row * (1 - row)).max()):.3f}")
    ax.set_xlabel("key")
    print(f"{name:>20}: weights {np.array2string(row, precision=3, suppress_small=True)}  "
          f"largest alpha(1 - alpha) {float((row * (1 - row)).max()):.3f}")
axes[0].set_ylabel("attention weight")
plt.tight_layout()
plt.show()

# %% [markdown]
# Scaled, the weights are spread over several keys; unscaled, one key gets (almost) all the
# weight and $\alpha_j(1 - \alpha_j)$ collapses. Now the same measurement over many queries and
# widths, with the **entropy** (熵) of each row of weights, $H = -\sum_j p_j \log p_j$: $\log T_k$
# for a uniform row, 0 for a one-hot row.

# %% tags=["figure:03_entropy"]
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
# **What to look for.** With the scaling, the entropy stays at the same level for every width;
# without it, it falls towards 0 as $d$ grows: each query puts nearly all its weight on a
# single key.

# %%
print(f"this lesson ran in {time.perf_counter() - START:.0f} s (after the kernel started)")

# %% [markdown]
# ## Exercises
#
# 1. Build the mask for a decoder that has already cached 3 positions and now receives 2 new
#    ones: `mindtf.causal_mask(2, 5)`. Draw it. Which keys can the last query see?
# 2. Make `MultiHeadAttention(d_model=15, n_heads=2)`. Read the error message: what does it ask
#    you to do?
# 3. In section 6, divide the scores by $d$ instead of $\sqrt{d}$ (multiply the queries by
#    $1/\sqrt{d}$). What happens to the entropy as $d$ grows, and why is that bad as well?
# 4. Give `AdditiveAttention` queries of width 8 and keys of width 12 (`query_dim=8,
#    key_dim=12`). Why can `scaled_dot_product_attention` not do the same?
#
# The solutions follow, folded: click *Solutions* (and the hidden code cells) to open them.
#
# <details><summary>Solutions</summary>
#
# 1. `causal_mask(2, 5)` has 2 rows (the new queries, positions 3 and 4) and 5 columns (keys
#    0–4). Row 0 sees keys 0–3, row 1 — the last query — sees all five keys 0–4: a position
#    sees itself and everything before it, cached or new.
# 2. A `ConfigError`: 15 is not divisible by 2, each head must get $D / H$ features; it lists
#    the divisors of 15 (1, 3, 5, 15) to pick `n_heads` from, or says to change `d_model`.
# 3. The scores' variance becomes $1/d$: they all shrink towards 0 and every row tends to the
#    uniform distribution ($H \to \log 32 \approx 3.47$). Attention then averages all values
#    equally, whatever the query: it can no longer *select*.
# 4. The additive score first maps both to the same hidden width $h$ ($W_q$ is $h \times 8$,
#    $W_k$ is $h \times 12$); a dot product needs vectors of one width (`InputError` otherwise).
#    Multi-head attention solves it the same way, with its projections (`kdim=`).
#
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solutions 1, 2 and 4, checked by running them
print(mindtf.causal_mask(2, 5).asnumpy().astype(int))
try:
    mindtf.MultiHeadAttention(d_model=15, n_heads=2)
except mindtf.ConfigError as err:
    print("ConfigError:", err)
add_wide = mindtf.AdditiveAttention(query_dim=8, key_dim=12, hidden_dim=16)
k12 = Tensor(rng.standard_normal((1, 6, 12)).astype(np.float32))  # (B, T_k, 12)
print("additive with widths 8 and 12:", add_wide(Tensor(q), k12, Tensor(v))[1].shape)
try:
    mindtf.scaled_dot_product_attention(Tensor(q), k12, Tensor(v))
except mindtf.InputError as err:
    print("InputError:", err)

# %% [markdown]
# ## Expected results
#
# > Measured on a 2-core x86 VM shared with other jobs, CPU, seed 0
# > (`python lessons/build.py 03`).
# >
# > - Section 1: rows of weights that sum to 1.0, a difference to numpy of 3.6e-07.
# > - Sections 3–4: zero weight above the diagonal and on the padding keys; `finite: True` with a
# >   weight sum of 0.0 for the row that sees no key.
# > - Section 5: the additive layer has 272 parameters. Additive attention is slower at every
# >   length and the gap grows with $T$: at $T = 512$ a few hundred milliseconds per call against
# >   a few for the dot product (40 to 120 times slower in our runs; timings vary with the load).
# > - Section 6: at $d = 512$ the scaled row's largest weight is 0.386 (largest
# >   $\alpha(1-\alpha)$ 0.237), the unscaled row puts 1.000 on one key (0.000). Entropy with
# >   the scaling: 2.97–3.02 nats at every width (uniform: 3.47); without it: 2.15 at $d = 4$,
# >   1.09 at 16, 0.51 at 64, 0.22 at 256, 0.11 at 1024 and 0.06 at 4096.
# > - Time: the lesson prints about 10 s; the whole notebook took 11 s (smoke mode, with
# >   smaller sizes: 7 s).
