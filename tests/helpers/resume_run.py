"""Subprocess half of the exact-resume test: train N steps from scratch (or resume), print losses.

usage: python resume_run.py OUT_DIR STEPS [--resume]
"""
import json
import os
import sys

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402

import mindtf  # noqa: E402
from mindtf.data.batching import RandomLMBatches  # noqa: E402
from mindtf.training.config import TrainConfig  # noqa: E402
from mindtf.training.losses import LMLossCell  # noqa: E402
from mindtf.training.trainer import Trainer  # noqa: E402


def build(out_dir: str, max_steps: int):
    mindtf.setup(device="cpu", mode="graph", seed=0)
    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2,
                                        n_embd=32, dropout=0.0))
    # a repeating random permutation: learnable, so the losses must fall
    data = np.tile(np.random.default_rng(123).permutation(37), 140).astype(np.int32)
    cfg = TrainConfig(max_steps=max_steps, batch_size=4, lr=3e-3, min_lr=3e-4, warmup_steps=3,
                      mode="graph", out_dir=out_dir, progress=False, eval_interval=1000,
                      keep_last=1)
    return Trainer(model, LMLossCell(model), cfg, RandomLMBatches(data, 16, 4, seed=7))


if __name__ == "__main__":
    out_dir, steps = sys.argv[1], int(sys.argv[2])
    trainer = build(out_dir, max_steps=20)
    if "--resume" in sys.argv:
        trainer.resume()
    losses = [trainer.train_one_step()["loss"] for _ in range(steps)]
    if "--save" in sys.argv:
        trainer.save_checkpoint()
    print(json.dumps(losses))
