"""Generation speed of mindtf's GPT: KV cache vs recomputing the whole prefix every step.

    python benchmarks/bench_generate.py                   # nano + gpt2-small shapes, 256 tokens
    python benchmarks/bench_generate.py --configs nano --rounds 5
    python benchmarks/bench_generate.py --quick           # tiny model, 16 tokens (smoke)

What is measured: wall time of ``mindtf.decoding.gpt_sampling.generate(model, prompt, N,
temperature=0, use_cache, compiled)`` -- greedy, batch 1, a prompt of 8 random tokens, N = 256
new tokens -- reported as new tokens per second, and the speed-up of the cache (no-cache
seconds / cache seconds). Three paths: the default compiled step over a fixed-size cache,
the PyNative growing cache, and recomputing the (uncropped) prefix each step in PyNative.

The models have the shapes of the training benchmark's configs (randomly initialised; speed does
not depend on the weights) but ``block_size = 512`` so that prompt + 256 new tokens fit in the
position table and neither path ever crops its context. Each mode gets one untimed warm-up
generation; then for r = 1..R (default 3) the cache run and the no-cache run alternate, and the
medians over rounds are reported. Greedy outputs of both paths are compared (``outputs_match``);
nothing about speed is asserted.

Honesty: the load average and ``uptime`` are recorded before and after, and whether mindtf's
CPU kernels were active; a run on a busy machine (1-minute load > 0.5 before, or > cores + 0.5
after) or a --quick run is marked ``"reportable": false`` and says so loudly
(benchmarks/bench_common.py).

Results: a markdown table on stdout and ``benchmarks/results/generate_<date>.json`` (a busy run:
``generate_busy_<date>.json``; or ``--out``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (busy_now, default_threads, load_snapshot,  # noqa: E402
                          loud_not_reportable, machine_info, reportability, result_path,
                          summarise, write_json)
from bench_train import CONFIGS, GPT_CONFIGS, parse_configs  # noqa: E402

GEN_BLOCK_SIZE = 512
PROMPT_LEN = 8


def bench_config(name: str, cfg: dict, new_tokens: int, rounds: int, warmup_tokens: int,
                 seed: int, log=print) -> dict:
    import numpy as np

    from mindtf.decoding.gpt_sampling import generate
    from mindtf.models.gpt import GPT, GPTConfig

    if PROMPT_LEN + new_tokens > GEN_BLOCK_SIZE:
        raise ValueError(f"prompt {PROMPT_LEN} + {new_tokens} new tokens exceed block_size "
                         f"{GEN_BLOCK_SIZE}")
    t0 = time.perf_counter()
    model = GPT(GPTConfig(vocab_size=cfg["vocab_size"], block_size=GEN_BLOCK_SIZE,
                          n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                          dropout=0.0))
    model.set_train(False)
    build_s = time.perf_counter() - t0
    prompt = np.random.default_rng(seed).integers(0, cfg["vocab_size"], size=(1, PROMPT_LEN))
    prompt = prompt.astype(np.int32)

    def run(flags, n: int):
        use_cache, compiled = flags
        t = time.perf_counter()
        out = generate(model, prompt, n, temperature=0, use_cache=use_cache, compiled=compiled)
        return time.perf_counter() - t, out

    # "cache": the default, a compiled step over a fixed-size cache; "pynative_cache": the
    # op-by-op growing cache; "no_cache": the whole prefix recomputed every step
    modes = {"cache": (True, True), "pynative_cache": (True, False), "no_cache": (False, False)}
    warm = {m: run(flag, warmup_tokens)[0] for m, flag in modes.items()}
    log(f"[{name}] {model.num_parameters():,} parameters, build {build_s:.1f} s, warm-up "
        + ", ".join(f"{m} {s:.2f} s" for m, s in warm.items()))
    raw = {m: [] for m in modes}
    outputs = {}
    for r in range(rounds):
        for m, flag in modes.items():
            secs, out = run(flag, new_tokens)
            raw[m].append(secs)
            outputs[m] = out
        log(f"[{name}] round {r + 1}/{rounds}: cache {raw['cache'][-1]:.2f} s, "
            f"pynative cache {raw['pynative_cache'][-1]:.2f} s, "
            f"no cache {raw['no_cache'][-1]:.2f} s")
    speedups = [nc / c for c, nc in zip(raw["cache"], raw["no_cache"])]
    same = outputs["cache"] == outputs["no_cache"]
    return {
        "model": {"n_layer": cfg["n_layer"], "n_head": cfg["n_head"], "n_embd": cfg["n_embd"],
                  "vocab_size": cfg["vocab_size"], "block_size": GEN_BLOCK_SIZE},
        "params": model.num_parameters(),
        "prompt_tokens": PROMPT_LEN,
        "new_tokens": new_tokens,
        "batch_size": 1,
        "rounds": rounds,
        "build_s": build_s,
        "warmup_s": warm,
        "warmup_tokens": warmup_tokens,
        "raw_s": raw,  # [round] seconds per generate() call
        "seconds": {m: summarise(v) for m, v in raw.items()},
        "tokens_per_s": {m: summarise([new_tokens / s for s in v]) for m, v in raw.items()},
        "speedup_per_round": speedups,
        "speedup": summarise(speedups),
        "outputs_match": bool(np.array_equal(outputs["cache"], outputs["no_cache"])),
        "first_mismatch": (None if same.all() else int(np.argmin(same[0]))),
    }


def markdown_table(result: dict) -> str:
    rows = ["| config | params | new tokens | cache (compiled) tok/s (median [min, max]) | "
            "PyNative cache tok/s | "
            "no-cache tok/s (median [min, max]) | speed-up (median [min, max]) | same output |",
            "|---|---:|---:|---|---|---|---|---|"]
    for name, c in result["configs"].items():
        tc, tn, s = c["tokens_per_s"]["cache"], c["tokens_per_s"]["no_cache"], c["speedup"]
        tp = c["tokens_per_s"]["pynative_cache"]
        rows.append(f"| {name} | {c['params']:,} | {c['new_tokens']} | "
                    f"{tc['median']:,.1f} [{tc['min']:,.1f}, {tc['max']:,.1f}] | "
                    f"{tp['median']:,.1f} | "
                    f"{tn['median']:,.1f} [{tn['min']:,.1f}, {tn['max']:,.1f}] | "
                    f"{s['median']:.2f}x [{s['min']:.2f}, {s['max']:.2f}] | "
                    f"{'yes' if c['outputs_match'] else 'no'} |")
    return "\n".join(rows)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default=None,
                   help=f"comma-separated, from {', '.join(GPT_CONFIGS)} "
                        "(default: nano,gpt2-small; "
                        "tiny with --quick)")
    p.add_argument("--new-tokens", type=int, default=None, help="default 256 (16 with --quick)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--warmup-tokens", type=int, default=None,
                   help="tokens of the untimed warm-up generation per mode (default 8; 4 with "
                        "--quick)")
    p.add_argument("--threads", type=int, default=None,
                   help=f"MindSpore CPU threads (default: cores available = {default_threads()})")
    p.add_argument("--tiny", action="store_true", help="use the tiny config (2 layers, d=32)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny model, 16 new tokens, 4 warm-up tokens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None,
                   help="JSON path (default benchmarks/results/generate_<date>.json)")
    a = p.parse_args(argv)
    parse_configs(p, a, GPT_CONFIGS)
    if a.new_tokens is None:
        a.new_tokens = 16 if a.quick else 256
    if a.warmup_tokens is None:
        a.warmup_tokens = 4 if a.quick else 8
    if a.threads is None:
        a.threads = default_threads()
    if a.new_tokens < 1 or a.rounds < 1 or a.warmup_tokens < 1 or a.threads < 1:
        p.error("--new-tokens, --rounds, --warmup-tokens and --threads must be >= 1")
    if PROMPT_LEN + a.new_tokens > GEN_BLOCK_SIZE:
        p.error(f"--new-tokens must be <= {GEN_BLOCK_SIZE - PROMPT_LEN} (block_size "
                f"{GEN_BLOCK_SIZE}, prompt {PROMPT_LEN})")
    return a


def main(argv=None) -> dict:
    a = parse_args(argv)
    before = load_snapshot()
    machine = machine_info()  # records the thread variables as the user had them
    warning = busy_now(a.threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(a.threads)  # before MindSpore is imported
    import mindtf
    import mindtf.kernels

    mindtf.setup(device="cpu", mode="pynative", seed=a.seed, threads=a.threads)
    kernels = {"MINDTF_KERNELS": os.environ.get("MINDTF_KERNELS"),
               "active": bool(mindtf.kernels.active())}
    started = datetime.now()
    result = {
        "benchmark": "generate",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine,
        "load_before": before,
        "kernels": kernels,
        "threads": a.threads,
        "quick": a.quick,
        "settings": {"new_tokens": a.new_tokens, "prompt_tokens": PROMPT_LEN, "batch_size": 1,
                     "decoding": "greedy (temperature=0)", "rounds": a.rounds,
                     "warmup_tokens": a.warmup_tokens, "block_size": GEN_BLOCK_SIZE,
                     "mode": "PyNative (mindtf.decoding.gpt_sampling.generate)", "seed": a.seed,
                     "order": "per round: cache then no cache"},
        "busy_warning": warning,
        "configs": {},
    }
    if warning:
        print(f"WARNING: {warning}", flush=True)
    print(f"bench_generate: {', '.join(a.configs)} | {a.new_tokens} new tokens | "
          f"threads={a.threads} | rounds={a.rounds} | block_size={GEN_BLOCK_SIZE} | "
          f"{machine['cpu']}", flush=True)
    for name in a.configs:
        result["configs"][name] = bench_config(name, CONFIGS[name], a.new_tokens, a.rounds,
                                               a.warmup_tokens, a.seed,
                                               log=lambda s: print(s, flush=True))
    result["wall_s"] = (datetime.now() - started).total_seconds()
    after = load_snapshot()
    result["load_after"] = after
    result["loadavg_at_end"] = after["loadavg"]
    ok, reasons = reportability(before, after, a.quick)
    result["reportable"], result["not_reportable_because"] = ok, reasons
    out = write_json(result, result_path("generate", a.quick, reasons, a.out))
    print()
    print(markdown_table(result))
    print(f"\ngreedy, batch 1, prompt {PROMPT_LEN} tokens, block_size={GEN_BLOCK_SIZE} for every "
          f"model; tok/s = new tokens / seconds per generate() call; speed-up = median over rounds "
          f"of no-cache / cache time; threads={a.threads}.")
    print(f"mindtf kernels {'on' if kernels['active'] else 'off'}; load before "
          f"{before['loadavg']}, after {after['loadavg']} | {before['uptime']}")
    if not ok:
        print(loud_not_reportable(reasons), flush=True)
    print(f"wrote {out} ({result['wall_s']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
