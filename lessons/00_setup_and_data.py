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
# # Lesson 0 · Setup (环境配置) and data (数据)
#
# **Goal.** Before any model: check that MindSpore and `mindtf` work on your machine and know
# what `mindtf.setup` chose for you (device, execution mode, seed, threads); fetch the three
# datasets (数据集) of the course — from a mirror folder (镜像) if you have one —, read the error
# you get when no source can deliver a file; and take a first look at each dataset.
#
# **Hardware and time.** Any CPU: about 5 s on a 2-core x86 VM (see *Expected results* at
# the end). The datasets are about 9 MB in all: read from a
# mirror folder when `MINDTF_DATA_MIRROR` is set, otherwise downloaded once from their official
# hosts. Run the lesson with the mirror set if your machine has no internet access:
#
# ```bash
# export MINDTF_DATA_MIRROR=/path/to/mirror    # a folder holding multi30k/, sst2/, ...
# jupyter lab lessons/
# ```

# %% tags=["parameters"]
import os

SMOKE = os.environ.get("MINDTF_LESSON_SMOKE") == "1"  # the tests' quick run
SEED = 0
MIRROR = os.environ.get("MINDTF_DATA_MIRROR", "")  # mirror folder(s); "" = none
OFFLINE = SMOKE  # True: never touch the network (mirror and files already present only)
N_EXAMPLES = 2 if SMOKE else 3  # example rows printed per dataset

# %%
import time

START = time.perf_counter()
# MindSpore reads its C++ log level once, when it is first imported: 3 = errors only (no warnings
# about absent GPU/Ascend plugins). Set it before the first `import mindspore`.
os.environ.setdefault("GLOG_v", "3")

import collections
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import mindtf
import mindtf.data
from mindtf.errors import DataError
from mindtf.runtime import env_report

# %% [markdown]
# ## 1. The environment (环境)
#
# `python -m mindtf env` prints the versions, the devices this MindSpore build can use and the
# settings that matter, and ends with a `WARNING:` line per known problem, each with its fix
# (numpy 2 with MindSpore 2.10, a MindSpore outside the tested range, ...). In a notebook the
# same report is one function call, `mindtf.runtime.env_report()`:

# %%
def tidy(text):
    """``text`` with this machine's folders written as the variables that name them
    ($MINDTF_DATA_MIRROR, $MINDTF_DATA_DIR, <checkout>), so the output reads the same everywhere."""
    text = str(text)
    for m in mindtf.data.mirrors(MIRROR):
        if m.path is not None:
            text = text.replace(str(m.path), "$MINDTF_DATA_MIRROR")
    data_env = os.environ.get("MINDTF_DATA_DIR")
    if data_env:
        text = text.replace(str(Path(data_env).resolve()), "$MINDTF_DATA_DIR")
        text = text.replace(data_env, "$MINDTF_DATA_DIR")
    root = mindtf.data.paths.repo_root()  # running from a checkout: its folder
    if root is not None:
        text = text.replace(str(root), "<checkout>")
    return text


rows, problems = env_report()
width = max(len(key) for key, _ in rows)
for key, value in rows:
    print(f"{key:<{width}}  {tidy(value)}")
print("\n".join(f"WARNING: {p}" for p in problems) or "no known problem found")

# %% [markdown]
# Then one call configures MindSpore for the whole process and says what it chose:
#
# - **device** (设备): `"auto"` takes the best one this MindSpore build can use, Ascend NPU >
#   NVIDIA GPU > CPU (`mindtf.available_devices()` lists them);
# - **mode** (执行模式): `"pynative"` (动态图) runs op by op, like numpy — best for learning
#   and debugging —, `"graph"` (静态图) compiles the whole computation first — fastest for
#   training. The model code is the same in both;
# - **seed** (随机种子): seeds Python, numpy and MindSpore, so that a lesson prints the same
#   numbers every time on the same machine;
# - **threads** (线程数): the CPU cores this process may use (MindSpore's own default of 25
#   threads oversubscribes a laptop).

# %%
info = mindtf.setup(device="auto", mode="pynative", seed=SEED)
print(info)
print("devices this build can use:", mindtf.available_devices())

from mindspore import Tensor

a = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))  # (2, 3)
print("a @ a.T on", info.device, "=\n", (a @ a.T).asnumpy())  # (2, 2)

# %% [markdown]
# ### CPU, GPU or Ascend
#
# - **Any CPU** (x86-64 or ARM): `pip install -r requirements.txt -e .` installs the CPU wheel;
#   `auto` picks `CPU`. Every lesson runs there, and the training lessons state their time on a
#   2-core VM.
# - **NVIDIA GPU**: install the MindSpore GPU wheel for your CUDA version from
#   <https://www.mindspore.cn/install>, then `pip install -e . --no-deps` and the remaining
#   requirements; `auto` picks `GPU`. Graph mode gives the largest speed-up, and
#   `precision="fp16"` is available.
# - **Huawei Ascend NPU** (OpenI, ModelArts): keep the image's MindSpore and CANN and run
#   `pip install -e . --no-deps`; `auto` picks `Ascend`. The report above then shows the CANN
#   version; the first graph compilation takes longer than on a CPU.
#
# Two things trip people up: **numpy must be below 2** for MindSpore 2.10 (the report warns),
# and **`GLOG_v` must be set before MindSpore is imported** (every lesson does it in its
# first code cell) — otherwise MindSpore prints a warning per missing GPU/Ascend plugin.
#
# ## 2. Fetching the datasets (数据集)
#
# The course uses three datasets. `mindtf.data` knows each file's size and SHA-256 checksum
# (校验和) and an ordered list of sources (the official host first, then public copies):

# %%
names = mindtf.data.list_datasets()
for name in names:
    spec = mindtf.data.dataset_info(name)
    files = ", ".join(f.name for f in spec.files)
    print(f"{name:<16} {spec.total_size / 1e6:5.1f} MB  {spec.description}\n{'':<16} files: "
          f"{files}")

# %% [markdown]
# `mindtf.data.fetch(name)` makes sure every file of a dataset sits, verified, in the data
# folder (`data/` of this checkout, or `MINDTF_DATA_DIR`). For each file it tries, in order:
#
# 1. the **mirrors** (`MINDTF_DATA_MIRROR`, or `mirror=`): local folders or base URLs holding
#    the files, or the sources' original downloads (`multi30k/train.de.gz`, `sst2/SST-2.zip`);
# 2. an original download you placed by hand next to the files;
# 3. the registry's URLs, one after the other — never with `offline=True`.
#
# Whatever the source, a file is kept only if its size and SHA-256 match, and a dataset's files
# appear only when *all* of them verified. A file already verified is not fetched again (its
# source is then `cache`). The same from a terminal: `python -m mindtf fetch multi30k`.

# %%
print("data folder:", tidy(mindtf.data.data_dir()))
print("mirrors:", [tidy(m.location) for m in mindtf.data.mirrors(MIRROR)] or "none (the internet)")


fetched = {}
for name in names:
    t = time.perf_counter()
    fetched[name] = mindtf.data.fetch(name, mirror=MIRROR or None, offline=OFFLINE,
                                      progress=False)
    print(f"{name}: {len(fetched[name].files)} file(s) verified in {time.perf_counter() - t:.1f} s")
    for file, source in fetched[name].sources.items():
        print(f"    {file:<13} <- {tidy(source)}")

# %% [markdown]
# ## 3. When every source fails
#
# No mirror, no internet, or a host that is down: `fetch` raises a `DataError` (数据错误) that
# lists **every source it tried and why each failed**, the files it expected (with size and
# checksum) and the ways to provide them. First, offline with an empty mirror folder:

# %%
with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as nowhere:
    try:
        mindtf.data.fetch("tinyshakespeare", mirror=empty, data_dir=nowhere, offline=True,
                          progress=False)
    except DataError as err:
        print(str(err).replace(empty, "<empty mirror>").replace(nowhere, "<data folder>"))

# %% [markdown]
# The message ends with the fixes: put the file there by hand, or point a mirror at a folder
# that has it. Now a source that *is* tried and fails: a registry (注册表) of our own whose two
# URLs point at port 9 of this machine, where nothing listens (no packet leaves the machine).
# `retries=0`: a refused connection is not retried.

# %%
toy_registry = {"datasets": {"toy": {"description": "a dataset nobody serves", "files": [{
    "name": "words.txt", "size": 12, "sha256": "0" * 64,
    "sources": [{"url": "http://127.0.0.1:9/words.txt"},
                {"url": "http://127.0.0.1:9/backup/words.txt"}]}]}}}
with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as nowhere:
    try:
        mindtf.data.fetch("toy", registry=toy_registry, mirror=empty, data_dir=nowhere,
                          retries=0, progress=False)
    except DataError as err:
        lines = str(err).replace(empty, "<empty mirror>").replace(nowhere, "<data folder>")
        print("\n".join(lines.splitlines()[:6]), "\n...")

# %% [markdown]
# Each source is on its own line with its reason (`Connection refused`), so you know whether to
# fix the network, the mirror or the URL.
#
# ## 4. A first look at each dataset
#
# The loaders fetch (from the cache now) and parse:
#
# - **Multi30k** (German–English image captions): `load_multi30k(split)` gives
#   `(german, english)` sentence pairs — the parallel corpus (平行语料) of the translation
#   lessons;
# - **Tiny Shakespeare**: `load_tinyshakespeare()` gives `(train_text, val_text)`, 90 % / 10 %
#   of one 1.1 MB text — the language-modelling (语言模型) data of lessons 1, 2 and the GPT;
# - **SST-2** (Stanford Sentiment Treebank): `load_sst2(split)` gives `(sentence, label)` rows,
#   label 1 = positive — sentiment classification (情感分类) for fine-tuning.

# %%
kwargs = dict(mirror=MIRROR or None, offline=OFFLINE, progress=False)
multi30k = {split: mindtf.data.load_multi30k(split, **kwargs) for split in ("train", "val", "test")}
print({split: len(pairs) for split, pairs in multi30k.items()}, "sentence pairs")
for de, en in multi30k["train"][:N_EXAMPLES]:
    print(f"  de: {de}\n  en: {en}")
de_len = np.array([len(de.split()) for de, _ in multi30k["train"]])
en_len = np.array([len(en.split()) for _, en in multi30k["train"]])
print(f"words per sentence (train): German {de_len.mean():.1f}, English {en_len.mean():.1f}, "
      f"longest {max(de_len.max(), en_len.max())}")

# %%
train_text, val_text = mindtf.data.load_tinyshakespeare(**kwargs)
chars = collections.Counter(train_text + val_text)
print(f"Tiny Shakespeare: {len(train_text):,} training + {len(val_text):,} validation characters, "
      f"{len(chars)} distinct characters, {(train_text + val_text).count(chr(10)):,} lines")
print(repr(train_text[:150]))
top = chars.most_common(20)
print("most frequent:", " ".join(f"{c!r}:{n / sum(chars.values()):.3f}" for c, n in top[:8]))

# %%
sst2 = {split: mindtf.data.load_sst2(split, **kwargs) for split in ("train", "dev")}
for split, rows_ in sst2.items():
    positive = sum(label for _, label in rows_)
    print(f"SST-2 {split}: {len(rows_):,} sentences, {positive / len(rows_):.1%} positive")
for sentence, label in sst2["dev"][:N_EXAMPLES]:
    print(f"  {label} {sentence}")

# %% tags=["figure:00_datasets"]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
bins = np.arange(0, 31)
axes[0].hist(de_len, bins, alpha=0.6, label="German")
axes[0].hist(en_len, bins, alpha=0.6, label="English")
axes[0].set_title("Multi30k train: words per sentence")
axes[0].set_xlabel("words")
axes[0].legend()
labels = [repr(c)[1:-1] if c != " " else "space" for c, _ in top]
axes[1].bar(range(len(top)), [n / sum(chars.values()) for _, n in top])
axes[1].set_xticks(range(len(top)), labels, rotation=90)
axes[1].set_title("Tiny Shakespeare: 20 most frequent characters")
axes[1].set_ylabel("share of all characters")
for i, rows_ in enumerate(sst2.values()):
    positive = sum(label for _, label in rows_) / len(rows_)
    axes[2].bar([i - 0.2, i + 0.2], [1 - positive, positive], width=0.4,
                color=["tab:red", "tab:green"], label=["negative", "positive"] if i == 0 else None)
axes[2].set_xticks([0, 1], [f"{s} ({len(r):,})" for s, r in sst2.items()])
axes[2].set_title("SST-2: label balance")
axes[2].set_ylabel("share of sentences")
axes[2].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# **What to look for.** Multi30k sentences are short (about 12 words) and German ones a little
# shorter in words than English ones (German glues nouns together); Tiny Shakespeare's most
# frequent character is the space, then `e`, `t`, `o`: a character model (lessons 1 and 2) first
# learns these frequencies; SST-2 is roughly balanced, so accuracy is a fair measure there:
# always answering "positive" would score 55.8 % on the training split and 50.9 % on dev.

# %%
print(f"this lesson ran in {time.perf_counter() - START:.0f} s (after the kernel started)")

# %% [markdown]
# ## Exercises
#
# 1. In a terminal, run `python -m mindtf env --json`. Which line tells you the device your
#    lessons will run on, and which one the mirror they will read from?
# 2. Fetch Tiny Shakespeare into a new, empty data folder from the mirror only:
#    `python -m mindtf fetch tinyshakespeare --offline --data-dir ts-data` (with
#    `MINDTF_DATA_MIRROR` set). Run it twice: what changes the second time?
# 3. Copy `input.txt` from that folder somewhere else, change one character, put it back and
#    fetch again with `--recheck`. What does mindtf do with the damaged file?
# 4. How many characters of Tiny Shakespeare's *validation* text never occur in its training
#    text? Why does that matter for a character-level model?
#
# <details><summary>Solutions</summary>
#
# 1. `device auto picks` (also `devices available`) and `MINDTF_DATA_MIRROR`.
# 2. The first run copies the file from the mirror and checks it (its source is the mirror
#    path); the second finds it verified (a `.verified.json` marker) and does nothing: source
#    `cache`, no hashing, no copy.
# 3. Its SHA-256 no longer matches: mindtf does not trust it, fetches the file again from the
#    first source that works (the mirror) and replaces it atomically. With only a damaged copy
#    and no source, you get the `DataError` of section 3.
# 4. None (the hidden cell below counts them): every validation character was seen in training,
#    so a character vocabulary built on the training text covers the validation text. On a
#    smaller corpus some would be missing, and the model could not even name them: tokenizers
#    reserve an "unknown" id (`<unk>`) for that.
#
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution 4
unseen = set(val_text) - set(train_text)
print(f"validation characters never seen in training: {len(unseen)} {sorted(unseen)}")

# %% [markdown]
# ## Expected results
#
# > Measured on a 2-core x86 VM shared with other jobs, CPU, seed 0, with
# > `MINDTF_DATA_MIRROR` set and an empty data folder (`python lessons/build.py 00`).
# >
# > - Section 1: `device=CPU mode=pynative seed=0 cpu_threads=2`, "no known problem found".
# > - Section 2: 3 datasets (multi30k 4.2 MB, sst2 4.1 MB, tinyshakespeare 1.1 MB); 10 files,
# >   each from the mirror (under a second per dataset); a second run says `cache` for each.
# > - Section 3: both errors list every source tried; the second ends each URL with
# >   `Connection refused (gave up after 1 try)`.
# > - Section 4: Multi30k 29,000 / 1,014 / 1,000 pairs, 11.1 German and 11.9 English words per
# >   sentence; Tiny Shakespeare 1,003,854 + 111,540 characters, 65 distinct, the space 15.2 %
# >   of them; SST-2 67,349 training sentences (55.8 % positive) and 872 dev (50.9 %).
# > - Time: the lesson prints 4–5 s; the whole notebook took 5–6 s (smoke mode, the same
# >   work offline: 13 s under a heavier load).
