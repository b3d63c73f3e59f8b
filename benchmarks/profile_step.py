"""Per-kernel profile of mindtf's compiled training step (MindSpore's profiler, CPU).

    python benchmarks/profile_step.py                       # nano, 10 profiled steps
    python benchmarks/profile_step.py --config gpt2-small --steps 3
    MINDTF_KERNELS=0 python benchmarks/profile_step.py      # MindSpore's built-in kernels only

The model, optimiser and batch are bench_train.py's (same CONFIGS and HPARAMS). After the warm-up
steps (the first compiles the graph), ``mindspore.Profiler`` records ``--steps`` steps and the
script prints a markdown table: kernel type, launches per step, milliseconds per step, share of
the summed kernel time, from the profiler's ``cpu_op_type_info_0.csv``, and the load average
before and after (a busy machine stretches every kernel, so read shares, not times).

Note: MindSpore's graph executor runs independent kernels concurrently, so a kernel's recorded
time includes waiting for a core; the shares of a busy machine overweight short kernels.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import CONFIGS, GPT_CONFIGS, HPARAMS, _random_batches  # noqa: E402


def _train_step(cfg: dict, threads: int, seed: int):
    import mindspore as ms
    from mindspore import Tensor

    import mindtf
    from mindtf.models.gpt import GPT, GPTConfig
    from mindtf.training.losses import LMLossCell
    from mindtf.training.optim import AdamW, decay_mask_for
    from mindtf.training.step import TrainStep

    mindtf.setup(device="cpu", mode="graph", seed=seed, threads=threads)
    model = GPT(GPTConfig(vocab_size=cfg["vocab_size"], block_size=cfg["block_size"],
                          n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                          dropout=0.0))
    params = model.trainable_params()
    opt = AdamW(params, lr=HPARAMS["lr"], betas=HPARAMS["betas"], eps=HPARAMS["eps"],
                weight_decay=HPARAMS["weight_decay"],
                decay_mask=decay_mask_for([(p.name, p) for p in params]))
    step = TrainStep(LMLossCell(model), opt, grad_clip=HPARAMS["grad_clip"], accum=1)
    step.set_train(True)
    lr = Tensor(HPARAMS["lr"], ms.float32)
    x, y = _random_batches(cfg, seed)[0]

    def one_step() -> None:
        loss, norm, finite = step(lr, Tensor(x[None]), Tensor(y[None]))
        loss.asnumpy(), norm.asnumpy(), finite.asnumpy()

    return one_step


def _read_types(out_dir: Path) -> list:
    found = sorted(out_dir.rglob("cpu_op_type_info_0.csv"))
    if not found:
        raise SystemExit(f"the profiler wrote no cpu_op_type_info_0.csv under {out_dir}")
    with open(found[-1], newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    # op_type, type_occurrences, execution_frequency(per-step), total_compute_time, avg, percent
    return [(r[0], int(float(r[2])), float(r[3])) for r in rows if len(r) >= 4]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="nano", choices=GPT_CONFIGS)
    p.add_argument("--steps", type=int, default=10, help="profiled steps")
    p.add_argument("--warmup", type=int, default=3, help="steps before profiling (1st compiles)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--top", type=int, default=15, help="rows of the table")
    p.add_argument("--out", default=None, help="profiler folder (default: a temporary one)")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    os.environ.setdefault("GLOG_v", "3")

    load_before = os.getloadavg()
    one_step = _train_step(CONFIGS[args.config], args.threads, seed=0)
    for _ in range(args.warmup):
        one_step()
    import mindspore as ms
    from mindspore.profiler import ProfilerActivity, ProfilerLevel

    out_dir = Path(args.out or tempfile.mkdtemp(prefix="mindtf_profile_"))
    prof = ms.Profiler(output_path=str(out_dir), profiler_level=ProfilerLevel.Level1,
                       activities=[ProfilerActivity.CPU])
    t0 = time.perf_counter()
    for _ in range(args.steps):
        one_step()
    wall = (time.perf_counter() - t0) / args.steps
    prof.stop()
    prof.analyse()
    load_after = os.getloadavg()

    types = _read_types(out_dir)
    total = sum(t for _, _, t in types) or 1.0
    kernels = os.environ.get("MINDTF_KERNELS", "auto")
    print(f"\nconfig {args.config}, {args.steps} profiled steps, {args.threads} threads, "
          f"MINDTF_KERNELS={kernels}; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; wall {wall * 1e3:.1f} ms/step (profiler on), "
          f"kernel time {total / args.steps:.1f} ms/step\n")
    print("| kernel | launches/step | ms/step | share |")
    print("|---|---:|---:|---:|")
    for name, per_step, t in sorted(types, key=lambda r: -r[2])[:args.top]:
        print(f"| {name} | {per_step} | {t / args.steps:.2f} | {100 * t / total:.1f}% |")
    print(f"\nprofiler output: {out_dir}")


if __name__ == "__main__":
    main()
