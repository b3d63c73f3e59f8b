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
# # Lesson 1 · What is a language model (语言模型)
#
# **Goal.** By the end of this lesson you can say what a language model *is* — a probability
# distribution (概率分布) over texts —, write the probability of a text with the chain rule
# (链式法则), build n-gram models (n 元语法模型) from real counts of Tiny Shakespeare, explain
# why they need smoothing (平滑) and how add-k and Kneser–Ney smoothing differ, measure a model
# with cross-entropy (交叉熵) and perplexity (困惑度), and sample Shakespeare from a bigram and a
# 5-gram model. You will also place n-gram models on the timeline of language models and on the
# course's *perplexity ladder*, which the next lessons climb.
#
# **Hardware and time.** Any CPU, no MindSpore work at all (the n-gram models are numpy): about
# 30 s on a 2-core x86 VM (see *Expected results* at the end). Tiny Shakespeare (1 MB) is read
# from the mirror folder `MINDTF_DATA_MIRROR` if set, otherwise downloaded once.
#
# Everything here comes from `mindtf`: `mindtf.models.ngram.NgramLM` counts and smooths, and its
# source (`mindtf/models/ngram.py`, numpy only) is short enough to read after the lesson.

# %% tags=["parameters"]
import os

SMOKE = os.environ.get("MINDTF_LESSON_SMOKE") == "1"  # the tests' quick run: less text
SEED = 0
OFFLINE = SMOKE  # True: never touch the network (the mirror, or files already present)
TRAIN_CHARS = 200_000 if SMOKE else None  # None: all ~1M training characters (the ladder's)
ORDERS = [1, 2, 3, 4, 5] if SMOKE else [1, 2, 3, 4, 5, 6, 7, 8]  # n-gram orders compared
SAMPLE_CHARS = 150 if SMOKE else 300  # characters sampled from each model in section 6

# %%
import time

START = time.perf_counter()
os.environ.setdefault("GLOG_v", "3")  # no MindSpore here, but keep every lesson's first cell alike

import matplotlib.pyplot as plt
import numpy as np

import mindtf
from mindtf.models.ngram import NgramConfig, NgramLM
from mindtf.recipes.char_lm_setup import CharLMData, load_char_text

# %% [markdown]
# ## 1. A language model is a probability distribution over texts
#
# A **language model** gives every text $w_1 w_2 \dots w_L$ — a sequence of tokens (词元) from a
# vocabulary (词表) $V$ — a probability $P(w_1 \dots w_L)$. A good one gives high probability to
# the texts people actually write ("To be, or not to be") and low probability to the others
# ("be not to or, To be"). Everything else follows from that one object: scoring a text,
# choosing between two transcriptions in speech recognition, and *generating* text by drawing
# from the distribution.
#
# We work with **characters** (字符) as tokens, on the text the whole course uses: Tiny
# Shakespeare, split 90 % / 10 % into training and validation text exactly as the quickstart
# GPT and the ladder split it, with the same character tokenizer (65 symbols).

# %%
data = CharLMData()  # Tiny Shakespeare, the last 10 % for validation: the quickstart's split
train_text, val_text = load_char_text(data, {"offline": OFFLINE, "progress": False})
tok = mindtf.CharTokenizer.from_text(train_text + val_text)  # as the quickstart builds it
V = tok.vocab_size
train_ids = np.array(tok.encode(train_text), np.int32)[:TRAIN_CHARS]  # (N,)
val_ids = np.array(tok.encode(val_text), np.int32)  # (M,)
print(f"{len(train_ids):,} training and {len(val_ids):,} validation characters, "
      f"vocabulary of V = {V}: {''.join(tok.chars)!r}")
print(val_text[:120])

# %% [markdown]
# ## 2. The chain rule
#
# A text is a long sequence, and there are $V^L$ of length $L$: no table can list their
# probabilities. The **chain rule** of probability rewrites the joint probability as a product
# of *next-token* probabilities, each conditioned on everything before it:
#
# $$P(w_1 \dots w_L) = \prod_{i=1}^{L} P(w_i \mid w_1 \dots w_{i-1}).$$
#
# This is exact, not an approximation; every language model in this course — counts, the
# neural LM of lesson 2, GPT — is a way to compute $P(w_i \mid w_{<i})$. The **n-gram model**
# makes one simplifying assumption, the Markov assumption (马尔可夫假设): only the last $n-1$
# tokens matter,
#
# $$P(w_i \mid w_1 \dots w_{i-1}) \approx P(w_i \mid w_{i-n+1} \dots w_{i-1}).$$
#
# Fit a trigram model ($n = 3$: two characters of context) and score a short text one character
# at a time. `distribution(context)` is the whole next-character distribution $(V,)$;
# `log_probs(ids)` scores every character of a text after the first, given the ones before it:

# %%
tri = NgramLM(NgramConfig(vocab_size=V, order=3)).fit(train_ids)
text = "To be, or not"
ids = tok.encode(text)
by_hand = []
for i in range(1, len(ids)):
    p = tri.distribution(ids[:i])  # (V,): P(. | the last 2 characters)
    by_hand.append(p[ids[i]])
    print(f"P({text[i]!r:>5} | {text[max(0, i - 2):i]!r:>6}) = {p[ids[i]]:.4f}")
log_p = tri.log_probs(np.array(ids))  # (L-1,) natural logarithms
print(f"log P(text | first char) = sum of the logs = {log_p.sum():.3f} nats; "
      f"the same by hand: {np.log(by_hand).sum():.3f}")
print("each distribution sums to", round(float(tri.distribution(ids[:5]).sum()), 6))

# %% [markdown]
# **What to look for.** After `"no"` the next character is almost surely `t` or a space; after
# a comma, a space. The least likely characters are the starts of words, where the trigram has
# to guess which word comes next. A long text has a tiny probability ($e^{-100}$ and less), so
# we always work with **log-probabilities** (对数概率): products become sums, and nothing
# underflows.
#
# ## 3. Counting n-grams
#
# Where do the probabilities come from? The **maximum-likelihood estimate** (最大似然估计,
# MLE) is a ratio of counts (计数) in the training text:
#
# $$P_{\mathrm{MLE}}(w \mid h) = \frac{c(h\,w)}{c(h)},$$
#
# with $c(h\,w)$ how often the context $h$ is followed by $w$. `NgramLM.count(tokens)` looks a
# sequence up in the counts of a fitted model:

# %%
five = NgramLM(NgramConfig(vocab_size=V, order=5)).fit(train_ids)
for a, b in [("q", "qu"), ("th", "the"), ("the", "the "), ("thou", "thou ")]:
    ca, cb = five.count(tok.encode(a)), five.count(tok.encode(b))
    print(f"c({a!r}) = {ca:6,}   c({b!r}) = {cb:6,}   "
          f"P_MLE({b[-1]!r} | {a!r}) = {cb / ca:.3f}")
print("distinct n-grams in the training text, n = 1..5:", five.num_ngrams)

# %% [markdown]
# In Shakespeare, `q` is always followed by `u`, so $P_{\mathrm{MLE}}(u \mid q) = 1$. Counting is
# cheap (`fit` sorts integer keys with numpy: a second for a 5-gram model of a million
# characters), but the table of contexts grows fast with $n$. The figure compares the n-grams
# the training text contains with the $V^n$ that are possible, and counts how many n-grams of
# the *validation* text never occur in training:

# %% tags=["figure:01_sparsity"]
def gram_keys(ids, n):
    """Each n-gram of ``ids`` as one integer (base V): (len(ids) - n + 1,) int64."""
    windows = np.lib.stride_tricks.sliding_window_view(ids.astype(np.int64), n)  # (., n)
    return windows @ (V ** np.arange(n - 1, -1, -1, dtype=np.int64))


seen, possible, unseen = [], [], []
for n in ORDERS:
    train_keys = np.unique(gram_keys(train_ids, n))
    seen.append(len(train_keys))
    possible.append(float(V) ** n)
    unseen.append(float(np.mean(~np.isin(gram_keys(val_ids, n), train_keys))))
for n, s, u in zip(ORDERS, seen, unseen):
    print(f"n={n}: {s:>9,} distinct n-grams in training (of {float(V) ** n:.1e} possible); "
          f"{u:6.1%} of the validation n-grams never seen")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
axes[0].semilogy(ORDERS, possible, "o--", color="gray", label="possible: $V^n$")
axes[0].semilogy(ORDERS, seen, "o-", label="seen in the training text")
axes[0].set_xlabel("order n")
axes[0].set_ylabel("number of n-grams")
axes[0].legend()
axes[0].grid(alpha=0.3)
axes[1].plot(ORDERS, 100 * np.array(unseen), "o-", color="C3")
axes[1].set_xlabel("order n")
axes[1].set_ylabel("% of validation n-grams")
axes[1].set_title("never seen in training: MLE gives them P = 0")
axes[1].grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.** The possible n-grams grow as $65^n$, the seen ones far more slowly: the
# counts are **sparse** (稀疏). From about $n = 5$ on, a sizeable share of the validation
# n-grams never occurs in training. Under MLE each of them has probability 0, so the whole
# validation text has probability 0 and an infinite cross-entropy: the model is useless exactly
# where a longer context should help.
#
# ## 4. Smoothing
#
# **Smoothing** takes a little probability from the n-grams that were seen and gives it to the
# ones that were not.
#
# - **Add-k** (加 k 平滑; Laplace for $k = 1$) pretends every n-gram was seen $k$ more times:
#   $$P_{\text{add-}k}(w \mid h) = \frac{c(h\,w) + k}{c(h) + kV}.$$
#   Simple, but it spreads the same mass over all $V$ continuations of a context, however
#   predictable the context is: for a long, rarely seen context, most of the probability goes
#   to continuations that never happen.
# - **Interpolated Kneser–Ney** (Kneser 和 Ney, 1995; the version of Chen and Goodman, 1998)
#   subtracts a fixed discount $D \in (0, 1)$ from every seen count and gives what it removed to
#   the shorter context $h'$ (the context without its oldest token), in proportion to the number
#   of distinct words $N_{1+}(h\,\cdot)$ seen after $h$:
#   $$P_{\mathrm{KN}}(w \mid h) = \frac{\max(c(h\,w) - D,\, 0)}{c(h)}
#     + \frac{D\, N_{1+}(h\,\cdot)}{c(h)}\, P_{\mathrm{KN}}(w \mid h').$$
#   Below the top order the counts $c$ are replaced by *continuation counts*: in how many
#   different contexts a token appears, not how often. (The classic example: "Francisco" is
#   frequent, but almost only after "San"; it should not be a likely word after an unseen
#   context.) A context never seen **backs off** (回退) to the shorter one, so every text gets a
#   probability > 0.
#
# `NgramConfig(smoothing="add-k", k=1.0)` or `"kneser-ney"` (the default; `discount=None`
# estimates one $D$ per order from the counts). Both give a proper distribution, even for a
# context that never occurs:

# %%
addk5 = NgramLM(NgramConfig(vocab_size=V, order=5, smoothing="add-k", k=1.0)).fit(train_ids)
print("Kneser-Ney discounts D for orders 1..5:", np.round(five.discounts, 3))
for context in ["the k", "Romeo", "zqxj "]:
    c = tok.encode(context)
    for name, model in (("Kneser-Ney", five), ("add-1", addk5)):
        p = model.distribution(c)  # (V,)
        top = np.argsort(-p)[:4]
        print(f"{name:>10} after {context!r}: sums to {p.sum():.6f}; most likely "
              + ", ".join(f"{tok.decode([int(t)])!r} {p[t]:.2f}" for t in top))

# %% [markdown]
# After `"the k"` both models expect `i` (for *king*), but add-1 is less sure of it (0.65
# against 0.85): it keeps some probability for each of the 65 characters, most of which never
# follow `"the k"`. After `"zqxj "`, never seen, both back off to shorter contexts and still
# sum to 1.
#
# ## 5. Cross-entropy and perplexity
#
# How good is a model? Score text it was *not* trained on. The **cross-entropy** is the mean
# negative log-probability of each validation token given the ones before it,
#
# $$H = -\frac{1}{M}\sum_{i=1}^{M} \ln P(w_i \mid w_{<i}) \quad \text{(nats; divide by } \ln 2
#   \text{ for bits)},$$
#
# and the **perplexity** is its exponential, $\mathrm{PPL} = e^{H}$: the number of equally
# likely choices the model is as unsure as, on average, at each step. A model that knows
# nothing (uniform over 65 characters) has $\mathrm{PPL} = 65$, $H = \ln 65 = 4.17$ nats; a
# perfect one $\mathrm{PPL} = 1$, $H = 0$. mindtf reports cross-entropy in nats everywhere (the
# same number is the training loss of lessons 2–4). Now the validation cross-entropy of both
# smoothings for every order:

# %% tags=["figure:01_smoothing"]
results = {"Kneser-Ney": [], "add-1": []}
t0 = time.perf_counter()
for n in ORDERS:
    for name, cfg in (("Kneser-Ney", NgramConfig(V, n, "kneser-ney")),
                      ("add-1", NgramConfig(V, n, "add-k", k=1.0))):
        results[name].append(NgramLM(cfg).fit(train_ids).cross_entropy(val_ids))
fit_s = time.perf_counter() - t0
print(f"uniform model: {np.log(V):.4f} nats, perplexity {V}")
for name, ce in results.items():
    print(f"{name:>10}:", "  ".join(f"n={n}: {h:.4f}" for n, h in zip(ORDERS, ce)))
best = int(np.argmin(results["Kneser-Ney"]))
h = results["Kneser-Ney"][best]
print(f"best: Kneser-Ney n={ORDERS[best]}, {h:.4f} nats = {h / np.log(2):.3f} bits per character, "
      f"perplexity {mindtf.perplexity(h):.2f}  ({2 * len(ORDERS)} models fitted and scored in "
      f"{fit_s:.0f} s)")

fig, ax = plt.subplots(figsize=(6, 3.4))
for name, ce in results.items():
    ax.plot(ORDERS, ce, "o-", label=name)
ax.axhline(np.log(V), color="gray", ls="--", lw=1, label="uniform: ln 65")
ax.set_xlabel("order n")
ax.set_ylabel("validation cross-entropy (nats)")
ax.set_ylim(bottom=0)
ax.legend()
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.** Up to the trigram the two smoothings agree (every short context has been
# seen thousands of times, so smoothing hardly matters). From $n = 4$ on, add-1 gets *worse*
# with more context — it wastes probability on unseen continuations of every rare context —,
# while Kneser–Ney keeps improving until about $n = 6$ and then flattens: longer contexts are
# seen too rarely to add information, and the model mostly backs off. That is the ceiling of
# counting: to use long contexts, a model has to **generalise** from similar contexts instead of
# looking up exact ones — the step lesson 2 takes.
#
# ## 6. Sampling Shakespeare
#
# A language model is also a generator: draw the first character from $P(\cdot \mid
# \text{start})$, append it, draw the next from $P(\cdot \mid \text{what we have})$, and so on.
# `sample(n, context, seed)` does exactly that (the same seed gives the same text). From a
# newline, with the bigram and the Kneser–Ney 5-gram:

# %%
bi = NgramLM(NgramConfig(vocab_size=V, order=2)).fit(train_ids)
start = tok.encode("\n")
for name, model in (("bigram (1 character of context)", bi),
                    ("5-gram (4 characters of context)", five)):
    print(f"--- {name}, seed {SEED} ---")
    print(tok.decode(model.sample(SAMPLE_CHARS, context=start, seed=SEED).tolist()))

# %% [markdown]
# **What to look for.** The bigram gets the *texture* right — letter frequencies, short words,
# capitalised speaker names followed by a colon, line breaks — but hardly a real word. The
# 5-gram writes mostly real words, names from the plays and a speaker/verse layout, yet no
# sentence makes sense: four characters of context are less than one word.
#
# ## 7. From counts to large language models
#
# n-gram models are the **statistical language models** (统计语言模型, SLM) that ran speech
# recognition and machine translation for decades. Their limits — contexts of a few tokens,
# no notion that *king* and *queen* are alike — drove the three steps after them:
#
# - **neural language models** (神经语言模型, NNLM): Bengio et al. (2003) replace counts by a
#   network over learned word vectors (lesson 2); recurrent networks (Mikolov et al., 2010) and
#   word2vec (2013) follow;
# - **pre-trained language models** (预训练语言模型, PLM): the Transformer (2017, lessons 3–4)
#   is trained once on a large corpus and fine-tuned for each task — ELMo, GPT and BERT (2018);
# - **large language models** (大语言模型, LLM): the same next-token objective scaled up to
#   billions of parameters and trillions of tokens — GPT-3 (2020), ChatGPT (2022), LLaMA (2023).

# %% tags=["figure:01_timeline"]
eras = [("SLM: n-gram counts", 1948, 2003, "C0"), ("NNLM", 2003, 2018, "C1"),
        ("PLM", 2018, 2020, "C2"), ("LLM", 2020, 2026, "C3")]
events = [(1948, "Shannon: n-gram statistics of English"),
          (1980, "n-gram LMs in speech recognition"), (1995, "Kneser-Ney smoothing"),
          (2003, "Bengio et al.: neural LM"), (2010, "RNN language model"),
          (2013, "word2vec"), (2017, "Transformer"), (2018, "ELMo, GPT, BERT"),
          (2019, "GPT-2"), (2020, "GPT-3 (175B)"), (2022, "ChatGPT"), (2023, "LLaMA")]
fig, ax = plt.subplots(figsize=(11, 4.2))
top = len(events)
for name, a, b, color in eras:
    ax.axvspan(a, b, color=color, alpha=0.2)
    ax.text((a + b) / 2, top + 0.2, name, ha="center", fontsize=10, weight="bold")
for i, (year, what) in enumerate(events):
    y = top - 1 - i  # one row per event, the oldest on top
    ax.plot(year, y, "o", color="black", ms=4)
    right = year < 2013  # the recent events are labelled on their left
    ax.text(year + (0.4 if right else -0.4), y, f"{year} {what}", va="center", fontsize=9,
            ha="left" if right else "right")
ax.set_xscale("function", functions=(lambda x: -np.log(2030 - np.minimum(x, 2029.9)),
                                     lambda y: 2030 - np.exp(-y)))  # stretch the recent years
ax.set_xlim(1945, 2026)
ax.set_xticks([1950, 1980, 2000, 2010, 2015, 2020, 2025])
ax.set_yticks([])
ax.set_ylim(-0.8, top + 1)
for side in ("left", "right", "top"):
    ax.spines[side].set_visible(False)
ax.set_title("SLM -> NNLM -> PLM -> LLM: the same task, P(next token | context)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Through all four eras the task did not change — predict the next token, score it with
# cross-entropy —, which is why one number can compare them.
#
# ## 8. The perplexity ladder
#
# The course measures every model it builds on the same validation characters, with the same
# tokenizer: one table from a unigram to a GPT, the **perplexity ladder** (README, *The
# perplexity ladder*; `python -m mindtf ladder`). The n-gram rungs are the Kneser–Ney models of
# section 5; the three networks are quoted from the ladder run (3000 steps of the NNLM of lesson
# 2; the quickstart GPT, 2000 steps of 12 × 64 characters; the same GPT with a 128-character
# context trained for 3000 steps of 24 × 128 characters, 4.8 times the quickstart's text):

# %% tags=["figure:01_ladder"]
LADDER_NETWORKS = {"NNLM": 1.6911, "GPT": 1.7568,  # measured by `python -m mindtf ladder`
                   "GPT, longer": 1.5377}
names = {1: "unigram", 2: "bigram", 3: "trigram", 5: "5-gram"}
rungs = {names[n]: results["Kneser-Ney"][ORDERS.index(n)] for n in names}
rungs.update(LADDER_NETWORKS)
print(f"{'model':>8}  {'CE (nats)':>9}  {'perplexity':>10}")
for name, ce in rungs.items():
    note = "  (ladder run)" if name in LADDER_NETWORKS else ""
    print(f"{name:>8}  {ce:9.4f}  {mindtf.perplexity(ce):10.2f}{note}")

fig, ax = plt.subplots(figsize=(7, 3.4))
bars = ax.bar(list(rungs), list(rungs.values()),
              color=["C0"] * 4 + ["C1", "C3", "C3"], hatch=[""] * 4 + ["//"] * 3)
for bar, ce in zip(bars, rungs.values()):
    ax.text(bar.get_x() + bar.get_width() / 2, ce + 0.04, f"{ce:.2f}\nppl {np.exp(ce):.1f}",
            ha="center", fontsize=8.5)
ax.set_ylabel("validation cross-entropy (nats)")
ax.set_ylim(0, max(rungs.values()) + 0.6)
ax.set_title("Tiny Shakespeare, characters (hatched: quoted from the ladder run)")
plt.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.** Each rung from the unigram to the 5-gram is lower than the one before,
# and the longer-trained GPT is the lowest of all (1.54 nats, perplexity 4.65). The two smaller
# networks are *not* lower than the 5-gram, and the reasons are instructive: on a million
# characters, well-smoothed counts of everything in the training text are hard to beat at short
# range; the NNLM sees 8 characters and only generalises what 101k parameters can hold; and the
# quickstart GPT stops after 2000 small steps while its validation loss is still falling (1.97,
# 1.84, 1.78 at steps 1000, 1500 and 2000). The same 0.8M-parameter GPT, given a 128-character
# context and 4.8 times as many training characters, passes the 5-gram at about step 2500 and
# ends 0.04 nats below it — and 0.02 below the best n-gram of section 5 ($n = 6$, 1.5581):
# more training and more context flip the order, which is the whole story of section 7.
# Exercise 4 lets you see the n-gram's own ceiling.

# %%
print(f"this lesson ran in {time.perf_counter() - START:.0f} s (after the kernel started)")

# %% [markdown]
# ## Exercises
#
# 1. Add-k with a smaller pseudo-count: fit `NgramConfig(V, 5, "add-k", k=0.01)`. Is it closer
#    to Kneser–Ney than add-1? Why does a smaller $k$ help at high orders?
# 2. Sample 200 characters from the 5-gram at temperature 0.5 and at 1.5
#    (`sample(..., temperature=...)`). What changes?
# 3. What are the cross-entropy and perplexity of the unigram model, and why is its perplexity
#    (about 28) so much lower than 65?
# 4. How far can counting go? Fit Kneser–Ney models of order 10 and 16 and score them. Then
#    score the 5-gram on its own *training* text. What do the two experiments say?
#
# The solutions follow, folded: click *Solutions* (and the hidden code cell) to open them.
#
# <details><summary>Solutions</summary>
#
# 1. Yes: about 1.74 nats at $n = 5$ against 2.13 for add-1 and 1.58 for Kneser–Ney. The mass
#    add-k gives to unseen continuations of a context is $kV / (c(h) + kV)$; for a context seen
#    a handful of times, $k = 1$ gives most of the probability away, $k = 0.01$ little. But one
#    $k$ for every context is still a blunt tool: Kneser–Ney's discount adapts to how many
#    different continuations each context has.
# 2. At 0.5 the text is more conservative: frequent words, common names, repeated phrases. At
#    1.5 rare characters get more weight and the words fall apart into bigram-like noise.
#    Temperature (温度) divides the log-probabilities before the softmax-like renormalisation.
# 3. About 3.35 nats, perplexity 28.4. Characters are far from uniform: space, `e`, `t`, `o`
#    make up a large share of the text and capital `Z` almost none; the unigram knows the
#    frequencies, which already removes most of the uncertainty of a uniform guess.
# 4. Longer orders do not help: about 1.58 at both $n = 10$ and $n = 16$, no better than
#    $n = 6$ (1.56) — almost every long validation context is new, and the model backs off. On
#    its training text the 5-gram scores about 1.25 nats, well below its validation 1.58: the
#    counts partly memorise the text they were taken from (over-fitting, 过拟合), which is why
#    we always score held-out text.
#
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solutions 1, 3 and 4, checked by running them (2: try it yourself)
addk_small = NgramLM(NgramConfig(V, 5, "add-k", k=0.01)).fit(train_ids)
print(f"1. add-0.01 5-gram: {addk_small.cross_entropy(val_ids):.4f} nats")
uni = results["Kneser-Ney"][0]
print(f"3. unigram: {uni:.4f} nats, perplexity {mindtf.perplexity(uni):.2f}")
for n in (10, 16):
    long_model = NgramLM(NgramConfig(V, n)).fit(train_ids)
    print(f"4. Kneser-Ney n={n}: {long_model.cross_entropy(val_ids):.4f} nats on validation")
print(f"4. the 5-gram on its training text: {five.cross_entropy(train_ids):.4f} nats")

# %% [markdown]
# ## Expected results
#
# > Measured on a 2-core x86 VM shared with other jobs, CPU, seed 0
# > (`python lessons/build.py 01`).
# >
# > - Section 1: 1,003,854 training and 111,540 validation characters, $V = 65$.
# > - Section 2: the trigram gives "To be, or not" (after its first character) a log-probability
# >   of −24.166 nats, the same by hand; $P(\text{' '} \mid \text{To}) = 0.8831$.
# > - Section 3: $c(q) = c(qu) = 563$; $c(th) = 20\,592$, $c(the) = 9506$; distinct n-grams
# >   65, 1380, 11,228, 48,539, 133,293 for $n = 1..5$ (559,503 for $n = 8$); validation
# >   n-grams never seen in training: 0.2 % ($n = 2$), 10.1 % ($n = 5$), 49.7 % ($n = 8$).
# > - Section 4: after `"the k"` Kneser–Ney gives `i` 0.85, add-1 0.65; every distribution sums
# >   to 1.000000.
# > - Section 5: uniform 4.1744 nats. Kneser–Ney 3.3473, 2.4844, 2.0449, 1.7290, 1.5789, 1.5581,
# >   1.5648, 1.5741 for $n = 1..8$; add-1 3.3473, 2.4819, 2.0657, 1.9363, 2.1266, 2.4775,
# >   2.8031, 3.0454. Best: Kneser–Ney $n = 6$, 1.5581 nats = 2.248 bits per character,
# >   perplexity 4.75.
# > - Section 6: the bigram sample starts `NE ETormetl`, the 5-gram sample `be Englists / Were in
# >   Gloucester;` (seed 0).
# > - Section 8: the ladder's n-gram rungs reproduced exactly (3.3473, 2.4844, 2.0449,
# >   1.5789), with the NNLM (1.6911), the quickstart GPT (1.7568) and the longer GPT
# >   (1.5377) quoted from the ladder run.
# > - Solutions: add-0.01 5-gram 1.7435; unigram perplexity 28.43; Kneser–Ney $n = 10$ 1.5818,
# >   $n = 16$ 1.5805; the 5-gram on its training text 1.2497.
# > - Time: the lesson prints 17–18 s; the whole notebook took 25–27 s (smoke mode, on the
# >   first 200,000 training characters and orders 1–5: 5 s).
