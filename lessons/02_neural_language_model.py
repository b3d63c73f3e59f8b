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
# # Lesson 2 · The neural language model (神经语言模型)
#
# **Goal.** Replace the counts of lesson 1 by a network: the neural probabilistic language
# model of Bengio, Ducharme, Vincent and Jauvin (2003), one of the first models to learn **word
# vectors** — embeddings (词嵌入) — together with the language model. You will see that an
# embedding is a one-hot vector (独热向量) times a matrix, done as a lookup (查表), and why the
# lookup is cheaper; step through one training step op by op in PyNative mode (动态图) with
# `mindspore.value_and_grad` and `mindtf.AdamW`; train the *same* cell compiled in graph mode
# (静态图) with the `Trainer`; put the model on the perplexity ladder; and look at the word
# vectors a word-level model learns from Shakespeare.
#
# **Hardware and time.** A 2-core CPU: about 1.5 minutes (up to 3 on a busy machine), almost
# all of it the two training runs of sections 4 and 5 (see *Expected results* at the end).
# Tiny Shakespeare is read from the mirror folder `MINDTF_DATA_MIRROR` if set, otherwise
# downloaded once. On a GPU or an Ascend NPU the training cells take seconds.

# %% tags=["parameters"]
import os

SMOKE = os.environ.get("MINDTF_LESSON_SMOKE") == "1"  # the tests' quick run: fewer steps
SEED = 0
OFFLINE = SMOKE  # True: never touch the network (the mirror, or files already present)
CONTEXT, N_EMBD, N_HIDDEN = 8, 32, 256  # the character NNLM: n-1, m, h (the ladder's)
BLOCK, BATCH = 64, 64  # training windows: characters per window, windows per step
CHAR_STEPS = 30 if SMOKE else 1000  # optimiser steps of the character NNLM (the ladder: 3000)
WORD_VOCAB = 2000  # the word-level model keeps the most frequent words (others: <unk>)
WORD_CONTEXT, WORD_EMBD, WORD_HIDDEN = 4, 32, 128  # the word NNLM of section 6
WORD_BLOCK = 16  # words per training window
WORD_STEPS = 30 if SMOKE else 1500  # optimiser steps of the word NNLM
TIMING_VOCAB = 2000 if SMOKE else 10000  # vocabulary of the lookup-vs-matmul timing
EVAL_BATCHES = 2 if SMOKE else None  # validation batches per Trainer evaluation (None: all)

# %%
import time

START = time.perf_counter()
# MindSpore reads its C++ log level once, when it is first imported: 3 = errors only (no warnings
# about absent GPU/Ascend plugins). Set it before the first `import mindspore`.
os.environ.setdefault("GLOG_v", "3")

import tempfile

import matplotlib.pyplot as plt
import mindspore as ms
import numpy as np
from mindspore import Tensor

import mindtf
from mindtf.data.batching import RandomLMBatches, full_lm_batches
from mindtf.models.ngram import NgramConfig, NgramLM
from mindtf.models.nnlm import NNLM, NNLMConfig
from mindtf.recipes.char_lm_setup import CharLMData, load_char_text
from mindtf.recipes.ladder import score_lm

info = mindtf.setup(device="auto", mode="pynative", seed=SEED)
print(info)
train_text, val_text = load_char_text(CharLMData(), {"offline": OFFLINE, "progress": False})
tok = mindtf.CharTokenizer.from_text(train_text + val_text)  # the quickstart's 65 characters
train_ids = np.array(tok.encode(train_text), np.int32)  # (N,)
val_ids = np.array(tok.encode(val_text), np.int32)  # (M,)
print(f"{len(train_ids):,} training and {len(val_ids):,} validation characters, V = "
      f"{tok.vocab_size}")

# %% [markdown]
# ## 1. One-hot × matrix = lookup
#
# A network computes with vectors, not with token ids. The simplest vector for token $w$ of a
# vocabulary of size $V$ is its **one-hot** vector $e_w \in \{0, 1\}^V$: all zeros but a 1 at
# position $w$. Multiply it by a matrix $C \in \mathbb{R}^{V \times m}$ and every row of $C$
# is multiplied by 0 except row $w$:
#
# $$e_w^\top C = C_{w,:} \qquad \text{(row } w \text{ of } C\text{)}.$$
#
# So a linear layer on one-hot inputs is a table of $V$ learned vectors of size $m$, and
# applying it is **reading row $w$** — an embedding lookup (嵌入查表). `NNLM.embed(ids)` looks
# the rows up; `NNLM.embed(ids, one_hot=True)` builds the one-hot vectors and multiplies. Same
# numbers, very different work: the product does $V \cdot m$ multiply-adds per token, the
# lookup copies $m$ numbers.

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


np.random.seed(SEED)  # mindtf initialises weights with numpy
wide = NNLM(NNLMConfig(vocab_size=TIMING_VOCAB, context=2, n_embd=64, n_hidden=8))
ids = Tensor(np.random.default_rng(SEED).integers(0, TIMING_VOCAB, (64, 64)).astype(np.int32))
looked_up = wide.embed(ids).asnumpy()  # (B, T, m)
multiplied = wide.embed(ids, one_hot=True).asnumpy()  # (B, T, V) @ (V, m) -> (B, T, m)
print("shapes", looked_up.shape, multiplied.shape, " largest difference:",
      float(np.abs(looked_up - multiplied).max()))
ms_lookup = per_call_ms(lambda: wide.embed(ids).asnumpy())
ms_onehot = per_call_ms(lambda: wide.embed(ids, one_hot=True).asnumpy())
macs = ids.size * TIMING_VOCAB * 64
print(f"V = {TIMING_VOCAB:,}, m = 64, {ids.size:,} tokens: lookup {ms_lookup:.2f} ms, "
      f"one-hot x C {ms_onehot:.1f} ms (x{ms_onehot / ms_lookup:.0f}); the product does "
      f"{macs / 1e6:,.0f} M multiply-adds, {TIMING_VOCAB - 1} of every {TIMING_VOCAB} with a 0")

# %% [markdown]
# **What to look for.** The difference is exactly 0: the lookup *is* the product. The product
# is tens to hundreds of times slower, and the gap grows with $V$ (GPT-2's vocabulary has
# 50 257 tokens): every framework implements embeddings as a lookup (MindSpore's `Gather`),
# and its gradient only touches the rows that were looked up (section 3).
#
# ## 2. The model of Bengio et al. (2003)
#
# An n-gram model whose probability comes from a network instead of a table of counts. For the
# $n - 1$ tokens before position $t$:
#
# 1. look each one up in the table $C$ ($V \times m$) and **concatenate** the vectors:
#    $x = (C_{w_{t-n+1}}, \dots, C_{w_{t-1}}) \in \mathbb{R}^{(n-1)m}$;
# 2. a hidden layer of $h$ tanh units, $a = \tanh(d + Hx)$;
# 3. scores for every next token, with optional **direct connections** $W$ from the input
#    to the output, $y = b + Wx + Ua$, and a softmax:
#
# $$P(w_t = i \mid w_{t-n+1} \dots w_{t-1}) = \frac{e^{y_i}}{\sum_j e^{y_j}}.$$
#
# The parameters keep the paper's letters: `C`, `H` (with bias $d$), `U` (with bias $b$),
# `W`. Their number is
#
# $$N = Vm + h(n-1)m + h + hV + V + V(n-1)m \quad (\text{the last term with direct
#   connections}).$$
#
# The key idea is in step 1: similar tokens can get similar vectors, and then a context never
# seen (*"the queen said"*) gets a prediction close to a similar one that was (*"the king
# said"*) — the generalisation counts cannot make. Here is the character model the ladder
# uses: 8 previous characters, $m = 32$, $h = 256$, direct connections.

# %%
cfg = NNLMConfig(vocab_size=tok.vocab_size, context=CONTEXT, n_embd=N_EMBD, n_hidden=N_HIDDEN,
                 direct=True, pad_id=0)


def nnlm_formula(c):
    """The parameter count above for an NNLMConfig."""
    v, m, h, k = c.vocab_size, c.n_embd, c.n_hidden, c.context
    return v * m + h * k * m + h + h * v + v + (v * k * m if c.direct else 0)


np.random.seed(SEED)
model = NNLM(cfg)
print(f"parameters: formula {nnlm_formula(cfg):,}, counted {model.num_parameters():,}")
for p in model.trainable_params():
    print(f"  {p.name:<10} {str(p.shape):<12}")

x_demo = Tensor(np.array([tok.encode("ROMEO:\nI dare")], np.int32))  # (B=1, T=13)
win = model.windows(x_demo).asnumpy()  # (B, T, n-1): the ids each position sees
for t in (0, 4, 12):
    print(f"position {t:2d} ({tok.decode([int(x_demo[0, t])])!r}) sees "
          f"{tok.decode(win[0, t].tolist())!r}")
print("logits", model(x_demo).shape, "(B, T, V): one next-character distribution per position")

# %% [markdown]
# Each position is predicted from its own window of the 8 characters ending there. Before the
# start of the text the window is padded with `pad_id` 0, which in this vocabulary is the
# newline: the model sees the start of a text as if it followed empty lines. So
# `construct(idx (B, T))` returns `(B, T, V)` logits — the shape GPT returns —, and the same
# `LMLossCell`, batches and `Trainer` train both.
#
# ## 3. One training step, op by op (PyNative)
#
# In PyNative mode every MindSpore operation runs when Python reaches it, like numpy: you can
# print and inspect anything. A training step is three calls:
#
# - the loss: `LMLossCell(model)(x, y)`, the mean cross-entropy of the next characters;
# - `mindspore.value_and_grad(fn, None, params)` turns `fn` into a function that returns the
#   loss *and* its gradient (梯度) with respect to each parameter (automatic differentiation,
#   自动微分);
# - `mindtf.AdamW(params, lr=...)` is the optimiser (优化器): calling it with the gradients
#   updates the parameters in place.

# %%
loss_cell = mindtf.LMLossCell(model)
optimizer = mindtf.AdamW(model.trainable_params(), lr=3e-3, weight_decay=0.0)
grad_fn = ms.value_and_grad(loss_cell, None, optimizer.params)

batches = RandomLMBatches(train_ids, BLOCK, BATCH, seed=SEED)
xb, yb = (Tensor(a) for a in batches.next())  # (B, T) each: y is x shifted by one
loss, grads = grad_fn(xb, yb)
print(f"loss before the step: {float(loss.asnumpy()):.4f} nats (uniform guess: "
      f"ln {tok.vocab_size} = {np.log(tok.vocab_size):.4f})")
for p, g in zip(optimizer.params, grads):
    g = g.asnumpy()
    rows = f"  rows with a gradient: {int((np.abs(g).sum(1) > 0).sum())}/{g.shape[0]}" \
        if p.name.startswith("C.") else ""
    print(f"  d loss / d {p.name:<10} shape {str(g.shape):<12} norm {np.linalg.norm(g):.4f}{rows}")
optimizer(grads)  # one AdamW update of every parameter
print(f"loss on the same batch after one step: {float(loss_cell(xb, yb).asnumpy()):.4f}")

t0 = time.perf_counter()
for _ in range(5):
    xb, yb = (Tensor(a) for a in batches.next())
    loss, grads = grad_fn(xb, yb)
    optimizer(grads)
pynative_ms = 1000 * (time.perf_counter() - t0) / 5
print(f"op by op: {pynative_ms:.0f} ms per step of {BATCH} x {BLOCK} characters")

# %% [markdown]
# **What to look for.** The first loss is close to, and a little above, the uniform guess
# $\ln 65$: random weights know nothing. One step lowers the loss on that batch. The gradient
# of `C` is non-zero only in the rows of characters that occur in the batch: a lookup passes
# gradient to the rows it read, nothing else.
#
# ## 4. The same cell, compiled
#
# A real run repeats that step thousands of times. In graph mode MindSpore compiles the whole
# step — forward, backward, gradient clipping, AdamW — into one graph once, then runs it
# without Python in the loop. `mindtf.Trainer` builds that step (`mindtf.build_train_step`:
# `value_and_grad` over `LMLossCell`, clipping, `AdamW`, as above), runs it under
# `TrainConfig(mode="graph")`, evaluates on the whole validation text and writes checkpoints.
# The model code does not change: the mode is a switch. We start again from fresh weights:

# %%
np.random.seed(SEED)
model = NNLM(cfg)
run_dir = tempfile.mkdtemp(prefix="nnlm-")
train_cfg = mindtf.TrainConfig(max_steps=CHAR_STEPS, batch_size=BATCH, lr=3e-3, min_lr=3e-4,
                               warmup_steps=min(100, CHAR_STEPS // 5), weight_decay=0.1,
                               eval_interval=max(CHAR_STEPS // 4, 1), log_interval=10,
                               eval_max_batches=EVAL_BATCHES,
                               out_dir=run_dir, mode="graph", progress=False)
trainer = mindtf.Trainer(model, mindtf.LMLossCell(model), train_cfg,
                         RandomLMBatches(train_ids, BLOCK, BATCH, seed=SEED),
                         lambda: full_lm_batches(val_ids, BLOCK, BATCH))
summary = trainer.fit()
rows = [r for r in trainer.history if "loss" in r]  # one row every log_interval steps
per_step = np.diff([r["elapsed_s"] for r in rows]) / np.diff([r["step"] for r in rows])
graph_ms = 1000 * float(np.median(per_step))  # the median skips the evaluations' pauses
print(f"{summary['steps']} steps in {summary['seconds']:.0f} s (the first one compiles); "
      f"compiled: {graph_ms:.0f} ms per step, op by op: {pynative_ms:.0f} ms")
print(f"final training loss {summary['train_loss']:.4f}, validation loss "
      f"{summary['val_loss']:.4f} nats")

# %% [markdown]
# The validation loss the `Trainer` prints scores non-overlapping windows of 64 characters, so
# the first characters of each window see padding instead of their real context. The ladder
# scores every validation character with its full 8-character context (`score_lm` from
# `mindtf.recipes.ladder`, which slides overlapping windows), the same targets as the n-gram
# models of lesson 1:

# %% tags=["figure:02_loss"]
score = score_lm(model, val_ids, block=BLOCK, context=CONTEXT)
print(f"NNLM after {CHAR_STEPS} steps: {score['loss']:.4f} nats, perplexity {score['ppl']:.2f} "
      f"on {score['tokens']:,} validation characters")
LADDER = {"bigram": 2.4844, "5-gram KN": 1.5789, "NNLM, 3000 steps": 1.6911,
          "GPT (quickstart)": 1.7568, "GPT (longer)": 1.5377}  # README, "The perplexity ladder"
val_rows = [r for r in trainer.history if "val_loss" in r]
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1, label="training loss")
ax.plot([r["step"] for r in val_rows], [r["val_loss"] for r in val_rows], "o-",
        label="validation loss (Trainer)")
for (name, ce), color in zip(LADDER.items(), ["C7", "C2", "C3", "C4", "C5"]):
    ax.axhline(ce, color=color, ls="--", lw=1, label=f"{name}: {ce:.2f}")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats)")
ax.set_ylim(bottom=1.3)
ax.legend(fontsize=8, ncol=2)
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.** The loss falls fast through the bigram's level (2.48) within the first
# hundred steps — the network has learned what a bigram knows — and then more slowly. After
# 1000 steps it sits between the trigram (2.04) and the 5-gram (1.58), close to the
# quickstart GPT (1.76); the ladder's run, 3000 steps of the same model, reaches 1.69. It does
# not beat the 5-gram: it has 101k parameters to summarise what the 5-gram stores in 133k exact
# counts, and no context longer than 8 characters (the ladder's longer GPT, with 128 characters
# of context and 0.8M parameters, does: 1.54). Its strength is elsewhere — it generalises
# between similar contexts —, and that shows best with words.
#
# Compiled, a step took half the time of the op-by-op step of section 3 in our runs (22 against
# 44 ms on a quiet machine; 25–31 against 53–79 ms on a busy one). For a model this small most
# of the time goes into a few matrix products, which run at the same speed in both modes; the
# compiled graph saves the Python and dispatch overhead between them, which matters more for
# models of many small operations (GPT).
#
# ## 5. A word-level NNLM
#
# Bengio et al. worked with words. With `mindtf.WordTokenizer` (lower-cased words and
# punctuation) and a vocabulary of the 2000 most frequent words (`Vocab`, the rest become
# `<unk>`), we train a word model with 4 words of context, $m = 32$, $h = 128$, no direct
# connections, on the same training text.

# %%
wtok = mindtf.WordTokenizer.build(train_text.splitlines(), max_size=WORD_VOCAB)
wtrain = np.array(wtok.encode(train_text), np.int32)  # (N_words,)
wval = np.array(wtok.encode(val_text), np.int32)
print(wtok, f"{len(wtrain):,} training and {len(wval):,} validation words; "
      f"{np.mean(wtrain == wtok.vocab.unk_id):.1%} of the training words are <unk>")
print("most frequent:", wtok.vocab.itos[4:24])

wcfg = NNLMConfig(vocab_size=wtok.vocab_size, context=WORD_CONTEXT, n_embd=WORD_EMBD,
                  n_hidden=WORD_HIDDEN, direct=False, pad_id=wtok.vocab.pad_id)
np.random.seed(SEED)
wmodel = NNLM(wcfg)
wtrain_cfg = mindtf.TrainConfig(max_steps=WORD_STEPS, batch_size=64, lr=5e-3, min_lr=5e-4,
                                warmup_steps=min(50, WORD_STEPS // 5), weight_decay=0.0,
                                eval_interval=WORD_STEPS, log_interval=10,
                                eval_max_batches=EVAL_BATCHES,
                                out_dir=tempfile.mkdtemp(prefix="word-nnlm-"), mode="graph",
                                progress=False)
wtrainer = mindtf.Trainer(wmodel, mindtf.LMLossCell(wmodel), wtrain_cfg,
                          RandomLMBatches(wtrain, WORD_BLOCK, 64, seed=SEED),
                          lambda: full_lm_batches(wval, WORD_BLOCK, 64))
wsummary = wtrainer.fit()
wscore = score_lm(wmodel, wval, block=WORD_BLOCK, context=WORD_CONTEXT)
word_ngrams = {n: NgramLM(NgramConfig(wtok.vocab_size, n)).fit(wtrain).cross_entropy(wval)
               for n in (1, 2, 3)}
print(f"word NNLM: {wmodel.num_parameters():,} parameters, {WORD_STEPS} steps in "
      f"{wsummary['seconds']:.0f} s; validation {wscore['loss']:.4f} nats per word, "
      f"perplexity {wscore['ppl']:.1f}")
print("Kneser-Ney on the same word ids:", "  ".join(
    f"n={n}: {ce:.4f} (ppl {mindtf.perplexity(ce):.1f})" for n, ce in word_ngrams.items()))

# %% [markdown]
# A perplexity around 80 means the model hesitates, at each word, as much as between 80
# equally likely words — out of 2000. (Word and character perplexities are not comparable:
# a word is about 5 characters.) After half a minute of training the small word NNLM is
# already a little better than the Kneser–Ney trigram on the same ids (perplexity 77 against
# 79): on words, where contexts are far sparser than on characters, generalising between
# similar contexts pays. The paper reports perplexities about 24 % lower than the best
# smoothed n-gram on the Brown corpus (a million words) and about 8 % lower on AP News
# (14 M words).
#
# ## 6. What the word vectors learned
#
# Nobody told the model which words are alike, but words that can take each other's place
# ("he" and "she", "my" and "his") get similar gradients, and so similar rows of `C`. We
# compare rows with the **cosine similarity** (余弦相似度),
# $\cos(u, v) = u \cdot v / (\lVert u \rVert \lVert v \rVert)$, among the 1000 most frequent
# words (rare words got too few updates to be placed well):

# %%
emb = wmodel.C.weight.asnumpy()  # (V, m): one learned vector per word
unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
candidates = np.arange(4, 1000)  # skip <unk>, <pad>, <bos>, <eos>


def neighbours(word, k=6):
    """The k words of ``candidates`` whose vectors are closest (cosine) to ``word``'s."""
    i = wtok.vocab[word]
    sims = unit[candidates] @ unit[i]  # (len(candidates),)
    order = [int(j) for j in candidates[np.argsort(-sims)] if j != i][:k]
    return wtok.vocab.lookup_tokens(order)


for word in ["he", "my", "good", "york", "three", "come", "king", "death"]:
    print(f"{word:>6}: {', '.join(neighbours(word))}")

# %% [markdown]
# A picture: project the vectors of a few groups of words onto their two main directions
# (principal component analysis, 主成分分析, with numpy's SVD: the directions along which the
# vectors vary most).

# %% tags=["figure:02_embeddings"]
groups = {"pronouns": ["i", "he", "she", "we", "they", "you", "thou"],
          "possessives": ["my", "his", "her", "our", "their", "your", "thy"],
          "numbers": ["two", "three", "four", "ten", "hundred", "thousand"],
          "names": ["york", "warwick", "clifford", "edward", "richard", "henry", "romeo"],
          "verbs": ["come", "go", "speak", "see", "hear", "know", "tell"]}
words = [w for ws in groups.values() for w in ws if w in wtok.vocab]
vecs = emb[wtok.vocab.lookup(words)]  # (n, m)
centred = vecs - vecs.mean(0)
_, _, vt = np.linalg.svd(centred, full_matrices=False)
xy = centred @ vt[:2].T  # (n, 2): coordinates on the first two principal directions
fig, ax = plt.subplots(figsize=(7, 5))
for g, (name, ws) in enumerate(groups.items()):
    idx = [words.index(w) for w in ws if w in words]
    ax.scatter(xy[idx, 0], xy[idx, 1], color=f"C{g}", label=name)
    for i in idx:
        ax.annotate(words[i], xy[i], fontsize=9, xytext=(3, 3), textcoords="offset points")
ax.set_xlabel("principal direction 1")
ax.set_ylabel("principal direction 2")
ax.set_title(f"word vectors of the NNLM after {WORD_STEPS} steps (PCA of m = {WORD_EMBD})")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.** Neighbours share a *grammatical role* more than a meaning: *he* next
# to *who* and *she*, *my* next to *their*, *good* next to *gentle* and *fair*, *York* next to
# *Warwick* and *Clifford* (the houses of the history plays). In the projection the
# possessives gather on one side, the numbers and the verbs in their own corners; pronouns and
# names overlap: two directions out of 32 cannot separate everything. With 225 000 training
# words and half a minute of training this is where word vectors start; word2vec (2013)
# trained the same kind of vectors on billions of words. (In smoke mode the model trains for
# 30 steps: the vectors are still random and the neighbours meaningless.)

# %%
print(f"this lesson ran in {time.perf_counter() - START:.0f} s (after the kernel started)")

# %% [markdown]
# ## Exercises
#
# 1. Build the character NNLM without direct connections (`direct=False`). How many parameters
#    does it lose? Predict it from the formula first.
# 2. Train the character model for 3000 steps, as the ladder does (`CHAR_STEPS = 3000`, about
#    2–3 minutes on 2 cores). Where does it land?
# 3. GPT-2's vocabulary has $V = 50\,257$ tokens of width $m = 768$. How many multiply-adds would
#    one-hot × matrix cost per token, against how many numbers copied by a lookup?
# 4. Find the nearest neighbours of `"love"`, `"night"` and `"romeo"` in the word model. Which
#    make sense, and why do some not?
#
# The solutions follow, folded: click *Solutions* (and the hidden code cell) to open them.
#
# <details><summary>Solutions</summary>
#
# 1. The direct connections $W$ are $V \times (n-1)m = 65 \times 256 = 16\,640$ weights:
#    101 217 parameters with them, 84 577 without.
# 2. The ladder's run of exactly this configuration (3000 steps, seed 0) reached 1.6911 nats
#    (perplexity 5.43): below the trigram, above the Kneser–Ney 5-gram (1.5789).
# 3. $50\,257 \times 768 \approx 38.6$ M multiply-adds per token for the product, 768 numbers
#    copied for the lookup: for a batch of 8 × 1024 tokens, 316 G multiply-adds, for nothing.
# 4. Frequent function words and names get sensible neighbours; content words such as *love*
#    and *night* often get neighbours of the same part of speech but of unrelated meaning. Four
#    words of context and a quarter of a million training words teach mostly syntax; meaning
#    needs far more text.
#
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solutions 1, 3 and 4, checked by running them (2: set CHAR_STEPS = 3000 and rerun)
no_direct = NNLMConfig(**{**cfg.to_dict(), "direct": False})
np.random.seed(SEED)
print(f"1. direct: {nnlm_formula(cfg):,}  no direct: {nnlm_formula(no_direct):,}  counted "
      f"{NNLM(no_direct).num_parameters():,}")
print(f"3. one-hot x C: {50257 * 768 / 1e6:.1f} M multiply-adds per token; lookup: 768 copies")
for word in ["love", "night", "romeo"]:
    print(f"4. {word:>6}: {', '.join(neighbours(word))}")

# %% [markdown]
# ## Expected results
#
# > Measured on a 2-core x86 VM (AMD EPYC), CPU, seed 0, 2026-12-03, machine quiet (load average
# > below 0.5 before the run; `python lessons/build.py 02`). mindtf's CPU kernels were on.
# >
# > - Section 1: largest difference 0.0 between the lookup and one-hot × C; with $V = 10\,000$,
# >   $m = 64$ and 4096 tokens, the lookup took 0.15 ms and the product 89 ms (584 times
# >   longer; 2.6 G multiply-adds; the ratio swings between about 400 and 600 from run to run).
# > - Section 2: 101,217 parameters by the formula and counted (84,577 without direct
# >   connections, solution 1).
# > - Section 3: loss 4.3763 before the step ($\ln 65 = 4.1744$), 3.8927 after it on the same
# >   batch; 57 of the 65 rows of `C` have a gradient; 44 ms per step op by op.
# > - Section 4: 1000 compiled steps in 26 s, 22 ms per step; training loss 1.6437, Trainer
# >   validation loss 1.8179; scored like the ladder: **1.7950 nats, perplexity 6.02** (the
# >   ladder's 3000 steps: 1.6911).
# > - Sections 5–6: 2000 words, 9.2 % of the training words `<unk>`; the word NNLM (338,512
# >   parameters, 1500 steps in 29 s) scores 4.3453 nats per word, perplexity 77.1; Kneser–Ney
# >   on the same ids: 180.0 (unigram), 84.3 (bigram), 78.7 (trigram). Neighbours: *he* → who,
# >   she; *my* → gentle, their; *york* → warwick, iv, men, clifford.
# > - Time: the lesson printed 61 s on the quiet machine (the same notebook printed 100 s while
# >   other jobs shared the two cores: expect up to twice the time on a busy machine). Smoke
# >   mode (30 steps per model, the vectors still random): 16–24 s.
