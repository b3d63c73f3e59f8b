"""Training throughput: mindtf (compiled TrainStep, GRAPH_MODE) vs a PyTorch reference GPT.

    python benchmarks/bench_train.py                      # nano + gpt2-small, 5 rounds
    python benchmarks/bench_train.py --configs nano --rounds 7 --include-pynative
    python benchmarks/bench_train.py --quick              # tiny model, 1 round, 2 steps (smoke)

What is measured: tokens/s = B * T / (seconds per optimiser step), where one step is forward,
cross-entropy, backward, global-norm clipping at 1.0 and an AdamW update, with the same model
(GPT-2 layout, same parameter count), the same hyper-parameters and the same thread count.

How: every framework runs in its own long-lived worker process (started with ``spawn``) that
builds the model, runs the warm-up steps (compilation for mindtf's graph mode; reported
separately, never timed as throughput) and then waits for commands on a pipe. The parent
interleaves them: for each round r = 1..R it asks mindtf for W timed steps, then torch for W
timed steps (then mindtf PyNative, if asked). Only one worker computes at any time. Per config it
reports the median tokens/s of each framework over the rounds, min/max, and the ratio
mindtf/torch as the median of the per-round ratios (robust to a machine whose speed drifts).

Results: a markdown table on stdout and ``benchmarks/results/train_<date>.json`` (or ``--out``).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import time
import traceback
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: model shape + batch of each benchmark configuration; ``steps`` = default W (timed steps/round)
CONFIGS = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=2, vocab_size=65,
                 steps=2),
    "nano": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, vocab_size=65,
                 steps=20),
    "gpt2-small": dict(n_layer=12, n_head=12, n_embd=768, block_size=256, batch_size=4,
                       vocab_size=50304, steps=3),
}
#: optimiser hyper-parameters, identical for both frameworks (mindtf's TrainConfig defaults)
HPARAMS = dict(lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, grad_clip=1.0)
N_BATCHES = 4  # distinct random batches, cycled
FRAMEWORKS = ("mindtf-graph", "torch", "mindtf-pynative")


# --------------------------------------------------------------------------- machine facts
from mindtf.runtime import default_threads  # noqa: E402  (imports no MindSpore)


def parse_configs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Turn ``args.configs`` (comma-separated, default by --quick/--tiny) into a checked list."""
    if args.configs is None:
        args.configs = "tiny" if (args.quick or args.tiny) else "nano,gpt2-small"
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in args.configs if c not in CONFIGS]
    if bad:
        parser.error(f"unknown config(s) {bad}; choose from {list(CONFIGS)}")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"') + f" ({platform.release()})"
    except OSError:
        pass
    return platform.platform()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def machine_info() -> dict:
    """CPU model, cores, RAM, OS and library versions (read without importing the frameworks)."""
    try:
        load = os.getloadavg()
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_available": default_threads(),
        "ram_gib": _ram_gib(),
        "os": _os_name(),
        "python": platform.python_version(),
        "mindspore": _version("mindspore"),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "mindtf": _version("mindtf"),
        "loadavg_at_start": list(load) if load else None,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "GLOG_v")},
    }


def busy_warning(threads: int) -> str | None:
    """A warning when the machine is already busy: timings are then unreliable, and PyTorch's
    OpenMP threads in particular slow down by an order of magnitude when oversubscribed."""
    try:
        load1 = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cores = os.cpu_count() or 1
    if load1 + threads > cores + 0.5:
        return (f"the machine is busy (1-minute load {load1:.1f} on {cores} cores, before this "
                f"benchmark's {threads} threads): timings will be noisy and unfair (an "
                "oversubscribed OpenMP pool, as in PyTorch, slows down far more than MindSpore's "
                "thread pool). Run on a quiet machine for numbers you report.")
    return None


def write_json(obj: dict, path: Path) -> Path:
    """Write atomically (``.tmp`` then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def default_out(kind: str, quick: bool) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%d_%H%M%S")
    return RESULTS / f"{kind}_{stamp}{'_quick' if quick else ''}.json"


def summarise(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# --------------------------------------------------------------------------- workers
def _pin_threads(threads: int) -> None:
    # before any framework is imported: OpenMP/MKL pools follow these
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("GLOG_v", "3")


def _random_batches(cfg: dict, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_BATCHES):
        tok = rng.integers(0, cfg["vocab_size"], size=(cfg["batch_size"], cfg["block_size"] + 1))
        out.append((tok[:, :-1].astype(np.int32), tok[:, 1:].astype(np.int32)))
    return out


def _build_mindtf(cfg: dict, threads: int, mode: str, seed: int):
    import mindspore as ms
    from mindspore import Tensor

    import mindtf
    from mindtf.models.gpt import GPT, GPTConfig
    from mindtf.training.optim import AdamW, decay_mask_for
    from mindtf.training.losses import LMLossCell
    from mindtf.training.step import TrainStep

    mindtf.setup(device="cpu", mode=mode, seed=seed, threads=threads)
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
    # leading micro-batch axis of size 1: (A=1, B, T)
    batches = [(Tensor(x[None]), Tensor(y[None])) for x, y in _random_batches(cfg, seed)]

    def one_step(i: int) -> float:
        loss, norm, finite = step(lr, *batches[i % len(batches)])
        # reading every output waits for the step (ms.runtime.synchronize() is not for CPU)
        norm.asnumpy(), finite.asnumpy()
        return float(loss.asnumpy())

    return one_step, model.num_parameters(), {"mindspore": ms.__version__, "mode": mode}


def _build_torch(cfg: dict, threads: int, seed: int):
    import torch

    from torch_gpt import TorchGPT, TorchGPTConfig, make_optimizer, train_step

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = TorchGPT(TorchGPTConfig(vocab_size=cfg["vocab_size"], block_size=cfg["block_size"],
                                    n_layer=cfg["n_layer"], n_head=cfg["n_head"],
                                    n_embd=cfg["n_embd"]))
    model.train()
    opt = make_optimizer(model, lr=HPARAMS["lr"], betas=HPARAMS["betas"], eps=HPARAMS["eps"],
                         weight_decay=HPARAMS["weight_decay"])
    batches = [(torch.from_numpy(x).long(), torch.from_numpy(y).long())
               for x, y in _random_batches(cfg, seed)]

    def one_step(i: int) -> float:
        x, y = batches[i % len(batches)]
        return train_step(model, opt, x, y, HPARAMS["grad_clip"])

    return one_step, model.num_parameters(), {"torch": torch.__version__,
                                              "torch_threads": torch.get_num_threads()}


def worker_main(conn, framework: str, cfg: dict, threads: int, warmup: int, seed: int) -> None:
    """A long-lived worker: build, warm up, then answer ``{"op": "run", "steps": W}`` commands."""
    try:
        _pin_threads(threads)
        t0 = time.perf_counter()
        if framework == "torch":
            one_step, n_params, info = _build_torch(cfg, threads, seed)
        else:
            one_step, n_params, info = _build_mindtf(cfg, threads, framework.split("-")[1], seed)
        build_s = time.perf_counter() - t0
        warm, losses, i = [], [], 0
        for _ in range(warmup):
            t = time.perf_counter()
            losses.append(one_step(i))
            warm.append(time.perf_counter() - t)
            i += 1
        conn.send({"ready": True, "params": n_params, "build_s": build_s, "warmup_step_s": warm,
                   "warmup_losses": losses, "info": info})
        while True:
            cmd = conn.recv()
            if cmd.get("op") != "run":
                break
            times = []
            for _ in range(int(cmd["steps"])):
                t = time.perf_counter()
                loss = one_step(i)
                times.append(time.perf_counter() - t)
                i += 1
            conn.send({"step_s": times, "loss": loss})
    except Exception:
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


class Worker:
    def __init__(self, ctx, framework: str, cfg: dict, threads: int, warmup: int, seed: int,
                 timeout: float):
        self.framework, self.timeout = framework, timeout
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, framework, cfg, threads, warmup,
                                                          seed), daemon=True)
        self.proc.start()
        child.close()

    def recv(self) -> dict:
        if not self.conn.poll(self.timeout):
            raise TimeoutError(f"{self.framework} worker gave no answer in {self.timeout:.0f} s")
        try:
            msg = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"{self.framework} worker died (exit code "
                               f"{self.proc.exitcode})") from None
        if "error" in msg:
            raise RuntimeError(f"{self.framework} worker failed:\n{msg['error']}")
        return msg

    def run(self, steps: int) -> dict:
        self.conn.send({"op": "run", "steps": steps})
        return self.recv()

    def close(self) -> None:
        try:
            self.conn.send({"op": "stop"})
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)


# --------------------------------------------------------------------------- one config
def bench_config(name: str, cfg: dict, frameworks: list, threads: int, rounds: int, steps: int,
                 warmup: int, seed: int, timeout: float, log=print) -> dict:
    ctx = mp.get_context("spawn")
    tokens_per_step = cfg["batch_size"] * cfg["block_size"]
    workers, ready = {}, {}
    try:
        for fw in frameworks:  # one at a time, so build and compile times are uncontended
            log(f"[{name}] starting {fw} worker (build + {warmup} warm-up steps) ...")
            workers[fw] = Worker(ctx, fw, cfg, threads, warmup, seed, timeout)
            ready[fw] = workers[fw].recv()
            log(f"[{name}] {fw}: {ready[fw]['params']:,} parameters, build "
                f"{ready[fw]['build_s']:.1f} s, warm-up steps "
                + ", ".join(f"{s:.2f}" for s in ready[fw]["warmup_step_s"]) + " s")
        counts = {fw: r["params"] for fw, r in ready.items()}
        if len(set(counts.values())) != 1:
            raise RuntimeError(f"[{name}] parameter counts differ between frameworks: {counts}")
        raw = {fw: [] for fw in frameworks}
        for r in range(rounds):
            for fw in frameworks:
                time.sleep(0.2)  # let the other worker's spinning threads go idle
                res = workers[fw].run(steps)
                raw[fw].append(res["step_s"])
            line = ", ".join(f"{fw} {tokens_per_step * steps / sum(raw[fw][-1]):,.0f}"
                             for fw in frameworks)
            log(f"[{name}] round {r + 1}/{rounds}: tokens/s {line}")
    finally:
        for w in workers.values():
            w.close()

    out = {"model": {k: v for k, v in cfg.items() if k != "steps"},
           "tokens_per_step": tokens_per_step, "steps_per_round": steps, "rounds": rounds,
           "warmup_steps": warmup, "params": counts, "frameworks": {}, "ratio_vs_torch": {}}
    tps = {}
    for fw in frameworks:
        per_round = [tokens_per_step * len(t) / sum(t) for t in raw[fw]]
        tps[fw] = per_round
        steady = statistics.median([s for t in raw[fw] for s in t])
        first = ready[fw]["warmup_step_s"][0] if ready[fw]["warmup_step_s"] else None
        out["frameworks"][fw] = {
            "info": ready[fw]["info"],
            "build_s": ready[fw]["build_s"],
            "warmup_step_s": ready[fw]["warmup_step_s"],
            "first_step_s": first,
            # the first call compiles (graph mode); what it took beyond a steady step
            "compile_s_est": (first - steady) if first is not None else None,
            "raw_step_s": raw[fw],  # [round][step] seconds
            "round_tokens_per_s": per_round,
            "median_step_s": steady,
            "tokens_per_s": summarise(per_round),
        }
    if "torch" in frameworks:
        for fw in frameworks:
            if fw == "torch":
                continue
            ratios = [a / b for a, b in zip(tps[fw], tps["torch"])]
            out["ratio_vs_torch"][fw] = {"per_round": ratios, **summarise(ratios)}
    return out


# --------------------------------------------------------------------------- report
def markdown_table(result: dict) -> str:
    rows = ["| config | framework | params | tokens/step | tokens/s median | min | max | "
            "ms/step | vs torch (median [min, max]) | first step s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, c in result["configs"].items():
        for fw, f in c["frameworks"].items():
            t = f["tokens_per_s"]
            r = c["ratio_vs_torch"].get(fw)
            ratio = (f"{r['median']:.2f}x [{r['min']:.2f}, {r['max']:.2f}]" if r
                     else ("1.00x (reference)" if fw == "torch" else "-"))
            first = f"{f['first_step_s']:.2f}" if f["first_step_s"] is not None else "-"
            rows.append(f"| {name} | {fw} | {c['params'][fw]:,} | {c['tokens_per_step']:,} | "
                        f"{t['median']:,.0f} | {t['min']:,.0f} | {t['max']:,.0f} | "
                        f"{1000 * f['median_step_s']:.1f} | {ratio} | {first} |")
    return "\n".join(rows)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default=None,
                   help=f"comma-separated, from {', '.join(CONFIGS)} (default: nano,gpt2-small; "
                        "tiny with --quick)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds R (default 5)")
    p.add_argument("--steps-per-round", type=int, default=None,
                   help="timed steps W per framework per round (default: nano 20, gpt2-small 3)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed warm-up steps per framework (default 3; the first compiles)")
    p.add_argument("--threads", type=int, default=None,
                   help=f"CPU threads for both frameworks (default: cores available = "
                        f"{default_threads()})")
    p.add_argument("--include-pynative", action="store_true",
                   help="also time mindtf in PyNative mode (same TrainStep, op by op)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--tiny", action="store_true", help="use the tiny config (2 layers, d=32)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny model, 1 round, 2 steps, 1 warm-up step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds to wait for any single worker answer")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON path (default benchmarks/results/train_<date>.json)")
    a = p.parse_args(argv)
    parse_configs(p, a)
    if a.rounds is None:
        a.rounds = 1 if a.quick else 5
    if a.warmup is None:
        a.warmup = 1 if a.quick else 3
    if a.steps_per_round is None and a.quick:
        a.steps_per_round = 2
    if a.threads is None:
        a.threads = default_threads()
    for name in ("rounds", "warmup", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be >= 1")
    if a.steps_per_round is not None and a.steps_per_round < 1:
        p.error("--steps-per-round must be >= 1")
    return a


def main(argv=None) -> dict:
    a = parse_args(argv)
    frameworks = ["mindtf-graph"] + ([] if a.no_torch else ["torch"]) + (
        ["mindtf-pynative"] if a.include_pynative else [])
    started = datetime.now()
    result = {
        "benchmark": "train",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "threads": a.threads,
        "quick": a.quick,
        "frameworks": frameworks,
        "settings": {"rounds": a.rounds, "warmup_steps": a.warmup, "seed": a.seed,
                     "hparams": HPARAMS, "distinct_batches": N_BATCHES,
                     "order": "per round: " + " then ".join(frameworks),
                     "torch_model": "benchmarks/torch_gpt.py (eager, SDPA is_causal, "
                                    "torch.optim.AdamW defaults, clip_grad_norm_ 1.0)",
                     "mindtf_model": "mindtf.models.gpt.GPT + mindtf.training.step.TrainStep (AdamW fused=True)"},
        "configs": {},
    }
    warning = busy_warning(a.threads)
    result["busy_warning"] = warning
    if warning:
        print(f"WARNING: {warning}", flush=True)
    print(f"bench_train: {', '.join(a.configs)} | {' vs '.join(frameworks)} | threads={a.threads} "
          f"| rounds={a.rounds} | {result['machine']['cpu']}", flush=True)
    for name in a.configs:
        cfg = CONFIGS[name]
        steps = a.steps_per_round or cfg["steps"]
        result["configs"][name] = bench_config(
            name, cfg, frameworks, a.threads, a.rounds, steps, a.warmup, a.seed, a.timeout,
            log=lambda s: print(s, flush=True))
    result["wall_s"] = (datetime.now() - started).total_seconds()
    result["loadavg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    out = write_json(result, a.out or default_out("train", a.quick))
    print()
    print(markdown_table(result))
    print(f"\ntokens/s = batch x block / seconds per optimiser step; warm-up excluded; "
          f"threads={a.threads}; ratio = median over rounds of mindtf/torch.")
    if warning:
        print(f"WARNING: {warning}")
    print(f"wrote {out} ({result['wall_s']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
