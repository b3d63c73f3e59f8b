"""Training throughput: mindtf (compiled TrainStep, GRAPH_MODE) vs PyTorch eager, same models.

    python benchmarks/bench_train.py                      # nano, gpt2-small, translation
    python benchmarks/bench_train.py --kernels both       # + mindtf on MindSpore's built-in kernels
    python benchmarks/bench_train.py --configs nano --rounds 7 --include-pynative
    python benchmarks/bench_train.py --quick              # tiny GPT + tiny Transformer (smoke)

What is measured: tokens/s = tokens per step / (seconds per optimiser step), where one step is
forward, (label-smoothed) cross-entropy, backward, global-norm clipping at 1.0 and an AdamW
update, with the same model (same parameter count, checked), the same hyper-parameters and the
same thread count. GPT configs count batch x block tokens; the ``translation`` config (the
encoder-decoder Transformer of configs/multi30k_transformer.yaml vs ``torch.nn.Transformer``)
counts batch x target length target positions.

How: every framework runs in its own long-lived worker process (started with ``spawn``) that
builds the model, runs the warm-up steps (compilation for mindtf's graph mode; reported
separately, never timed as throughput), measures the MatMul rate for the roofline, and then
waits for commands on a pipe. The parent interleaves them: for each round r = 1..R it asks each
worker in turn for W timed steps. Only one worker computes at any time. Per config it reports the
median tokens/s of each framework over the rounds, min/max, the ratio mindtf/torch as the median
of the per-round ratios, and the MatMul roofline (benchmarks/roofline.py).

Honesty: the load average and ``uptime`` are recorded before and after; a run on a busy machine
(1-minute load > 0.5 before, or > cores + 0.5 after), a --quick run or one with fewer than 5
rounds is marked ``"reportable": false`` and says so loudly (benchmarks/bench_common.py).

Results: a markdown table on stdout and ``benchmarks/results/train_<date>.json`` (a busy run:
``train_busy_<date>.json``; or ``--out``).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (RESULTS, busy_now, default_out, default_threads,  # noqa: E402,F401
                          load_snapshot, loadavg, loud_not_reportable, machine_info,
                          reportability, result_path, summarise, write_json)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TRANSLATION_YAML = REPO / "configs" / "multi30k_transformer.yaml"

#: model shape + batch of each benchmark configuration; ``steps`` = default W (timed steps/round)
CONFIGS = {
    "tiny": dict(kind="gpt", n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=2,
                 vocab_size=65, steps=2),
    "nano": dict(kind="gpt", n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12,
                 vocab_size=65, steps=20),
    "gpt2-small": dict(kind="gpt", n_layer=12, n_head=12, n_embd=768, block_size=256,
                       batch_size=4, vocab_size=50304, steps=3),
    # the lesson-5 model: layers, heads, widths, dropout-free, optimiser and label smoothing are
    # read from configs/multi30k_transformer.yaml; the vocabulary sizes are those the recipe
    # builds from Multi30k de-en (min_freq 2: 7,857 German, 5,977 English words); the batch is
    # the recipe's most frequent one (128 sentences padded to 16 tokens: 163 of the 226 batches
    # of an epoch; the rest 8 / 24 / 32 / 40 / 48), with random sentence lengths (padding masks)
    "translation": dict(kind="seq2seq", yaml=TRANSLATION_YAML.relative_to(REPO).as_posix(),
                        src_vocab_size=7857, tgt_vocab_size=5977, batch_size=128, src_len=16,
                        tgt_len=16, pad_id=1, steps=5),
    "tiny-translation": dict(kind="seq2seq", d_model=32, n_heads=2, n_encoder_layers=1,
                             n_decoder_layers=1, d_ff=64, max_len=16, src_vocab_size=50,
                             tgt_vocab_size=60, batch_size=4, src_len=8, tgt_len=8, pad_id=1,
                             steps=2),
}
GPT_CONFIGS = [n for n, c in CONFIGS.items() if c["kind"] == "gpt"]
#: optimiser hyper-parameters of the GPT configs, identical for both frameworks (mindtf's
#: TrainConfig defaults); the translation configs take theirs from the recipe's YAML
HPARAMS = dict(lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, grad_clip=1.0)
SEQ2SEQ_HPARAMS = dict(lr=1e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01, grad_clip=1.0,
                       label_smoothing=0.1)
N_BATCHES = 4  # distinct random batches, cycled
MIN_REPORTABLE_ROUNDS = 5
KERNEL_CHOICES = ("on", "off", "both")


def resolve_config(name: str) -> dict:
    """``CONFIGS[name]`` completed: the translation config reads its model and optimiser
    settings from the recipe's YAML (``model``/``train`` sections; dropout forced to 0)."""
    cfg = dict(CONFIGS[name])
    if cfg["kind"] != "seq2seq":
        cfg["hparams"] = dict(HPARAMS)
        return cfg
    hp = dict(SEQ2SEQ_HPARAMS)
    if "yaml" in cfg:
        import yaml

        doc = yaml.safe_load((REPO / cfg["yaml"]).read_text(encoding="utf-8"))
        m, t = doc["model"], doc.get("train", {})
        for key in ("d_model", "n_heads", "n_encoder_layers", "n_decoder_layers", "d_ff",
                    "max_len", "norm_first"):
            if key in m:
                cfg[key] = m[key]
        cfg["yaml_dropout"] = m.get("dropout")
        hp.update(lr=t.get("lr", hp["lr"]), eps=t.get("eps", hp["eps"]),
                  betas=(t.get("beta1", hp["betas"][0]), t.get("beta2", hp["betas"][1])),
                  weight_decay=t.get("weight_decay", hp["weight_decay"]),
                  grad_clip=t.get("grad_clip", hp["grad_clip"]),
                  label_smoothing=t.get("label_smoothing", hp["label_smoothing"]))
    if cfg.get("norm_first"):
        raise ValueError("the torch reference mirrors a post-norm Transformer only")
    cfg["dropout"] = 0.0  # timing: no dropout in either framework
    cfg["hparams"] = hp
    return cfg


def tokens_per_step(cfg: dict) -> int:
    """GPT: batch x block tokens; translation: batch x target length (target positions)."""
    if cfg["kind"] == "seq2seq":
        return cfg["batch_size"] * cfg["tgt_len"]
    return cfg["batch_size"] * cfg["block_size"]


def parse_configs(parser: argparse.ArgumentParser, args: argparse.Namespace,
                  choices=None) -> None:
    """Turn ``args.configs`` (comma-separated, default by --quick/--tiny) into a checked list."""
    choices = list(CONFIGS) if choices is None else list(choices)
    if args.configs is None:
        quick = args.quick or args.tiny
        default = ("tiny,tiny-translation" if quick else "nano,gpt2-small,translation")
        args.configs = ",".join(c for c in default.split(",") if c in choices)
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in args.configs if c not in choices]
    if bad:
        parser.error(f"unknown config(s) {bad}; choose from {choices}")


def busy_warning(threads: int):
    """Kept for callers of the old API: :func:`bench_common.busy_now`."""
    return busy_now(threads)


# --------------------------------------------------------------------------- workers
def _pin_threads(threads: int) -> None:
    # before any framework is imported: OpenMP/MKL pools follow these
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("GLOG_v", "3")


def _set_kernels(framework: str) -> None:
    """``MINDTF_KERNELS`` for a mindtf worker, before mindtf/MindSpore is imported:
    ``0`` for the ``-builtin`` variants, else ``auto`` (``1`` if the user set it)."""
    if framework.endswith("-builtin"):
        os.environ["MINDTF_KERNELS"] = "0"
    elif os.environ.get("MINDTF_KERNELS", "auto").strip().lower() not in ("1", "on", "true"):
        os.environ["MINDTF_KERNELS"] = "auto"


def _random_batches(cfg: dict, seed: int):
    """``N_BATCHES`` random batches: GPT ``(x, y)`` int32 ``(B, T)``; translation
    ``(src (B, S), tgt_in (B, T), tgt_out (B, T))`` with random sentence lengths in
    ``[len/2, len]``, padded with ``pad_id`` (so the padding masks do real work)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_BATCHES):
        if cfg["kind"] == "gpt":
            tok = rng.integers(0, cfg["vocab_size"],
                               size=(cfg["batch_size"], cfg["block_size"] + 1))
            out.append((tok[:, :-1].astype(np.int32), tok[:, 1:].astype(np.int32)))
            continue
        b, s, t, pad = cfg["batch_size"], cfg["src_len"], cfg["tgt_len"], cfg["pad_id"]
        src = rng.integers(4, cfg["src_vocab_size"], size=(b, s))
        tgt = rng.integers(4, cfg["tgt_vocab_size"], size=(b, t + 1))
        for i in range(b):
            src[i, rng.integers(max(1, s // 2), s + 1):] = pad
            tgt[i, rng.integers(max(2, t // 2), t + 2):] = pad
        out.append((src.astype(np.int32), tgt[:, :-1].astype(np.int32),
                    tgt[:, 1:].astype(np.int32)))
    return out


def _build_mindtf(cfg: dict, threads: int, mode: str, seed: int):
    import mindspore as ms
    from mindspore import Tensor

    import mindtf
    import mindtf.kernels
    from mindtf.training.optim import AdamW, decay_mask_for
    from mindtf.training.step import TrainStep

    mindtf.setup(device="cpu", mode=mode, seed=seed, threads=threads)
    hp = cfg["hparams"]
    if cfg["kind"] == "gpt":
        from mindtf.models.gpt import GPT, GPTConfig
        from mindtf.training.losses import LMLossCell

        model = GPT(GPTConfig(vocab_size=cfg["vocab_size"], block_size=cfg["block_size"],
                              n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                              dropout=0.0))
        loss_cell = LMLossCell(model)
    else:
        from mindtf.models.transformer import Transformer, TransformerConfig
        from mindtf.training.losses import Seq2SeqLossCell

        model = Transformer(TransformerConfig(
            src_vocab_size=cfg["src_vocab_size"], tgt_vocab_size=cfg["tgt_vocab_size"],
            d_model=cfg["d_model"], n_heads=cfg["n_heads"],
            n_encoder_layers=cfg["n_encoder_layers"], n_decoder_layers=cfg["n_decoder_layers"],
            d_ff=cfg["d_ff"], dropout=0.0, norm_first=False, max_len=cfg["max_len"],
            pad_id=cfg["pad_id"]))
        loss_cell = Seq2SeqLossCell(model, hp["label_smoothing"], cfg["pad_id"])
    params = model.trainable_params()
    opt = AdamW(params, lr=hp["lr"], betas=tuple(hp["betas"]), eps=hp["eps"],
                weight_decay=hp["weight_decay"],
                decay_mask=decay_mask_for([(p.name, p) for p in params]))
    step = TrainStep(loss_cell, opt, grad_clip=hp["grad_clip"], accum=1)
    step.set_train(True)
    lr = Tensor(hp["lr"], ms.float32)
    # leading micro-batch axis of size 1: (A=1, B, T)
    batches = [tuple(Tensor(a[None]) for a in batch) for batch in _random_batches(cfg, seed)]

    def one_step(i: int) -> float:
        loss, norm, finite = step(lr, *batches[i % len(batches)])
        # reading every output waits for the step (ms.runtime.synchronize() is not for CPU)
        norm.asnumpy(), finite.asnumpy()
        return float(loss.asnumpy())

    n_params = sum(int(p.size) for p in params)
    info = {"mindspore": ms.__version__, "mode": mode,
            "MINDTF_KERNELS": os.environ.get("MINDTF_KERNELS"),
            "kernels_active": bool(mindtf.kernels.active())}
    return one_step, n_params, info


def _build_torch(cfg: dict, threads: int, seed: int):
    import torch

    from torch_gpt import make_optimizer

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    hp = cfg["hparams"]
    if cfg["kind"] == "gpt":
        from torch_gpt import TorchGPT, TorchGPTConfig, train_step

        model = TorchGPT(TorchGPTConfig(vocab_size=cfg["vocab_size"],
                                        block_size=cfg["block_size"], n_layer=cfg["n_layer"],
                                        n_head=cfg["n_head"], n_embd=cfg["n_embd"]))

        def run(batch):
            return train_step(model, opt, *batch, hp["grad_clip"])
    else:
        from torch_transformer import TorchTransformer, TorchTransformerConfig
        from torch_transformer import train_step as seq2seq_step

        model = TorchTransformer(TorchTransformerConfig(
            src_vocab_size=cfg["src_vocab_size"], tgt_vocab_size=cfg["tgt_vocab_size"],
            d_model=cfg["d_model"], n_heads=cfg["n_heads"],
            n_encoder_layers=cfg["n_encoder_layers"], n_decoder_layers=cfg["n_decoder_layers"],
            d_ff=cfg["d_ff"], dropout=0.0, max_len=cfg["max_len"], pad_id=cfg["pad_id"]))

        def run(batch):
            return seq2seq_step(model, opt, *batch, hp["grad_clip"], hp["label_smoothing"])
    model.train()
    opt = make_optimizer(model, lr=hp["lr"], betas=tuple(hp["betas"]), eps=hp["eps"],
                         weight_decay=hp["weight_decay"])
    batches = [tuple(torch.from_numpy(a).long() for a in batch)
               for batch in _random_batches(cfg, seed)]

    def one_step(i: int) -> float:
        return run(batches[i % len(batches)])

    return one_step, model.num_parameters(), {"torch": torch.__version__,
                                              "torch_threads": torch.get_num_threads()}


def worker_main(conn, framework: str, cfg: dict, threads: int, warmup: int, seed: int,
                roofline_on: bool = True) -> None:
    """A long-lived worker: build, warm up, measure MatMul, then answer
    ``{"op": "run", "steps": W}`` commands."""
    try:
        _pin_threads(threads)
        import roofline

        t0 = time.perf_counter()
        if framework == "torch":
            one_step, n_params, info = _build_torch(cfg, threads, seed)
        else:
            _set_kernels(framework)
            one_step, n_params, info = _build_mindtf(cfg, threads, framework.split("-")[1], seed)
        build_s = time.perf_counter() - t0
        warm, losses, i = [], [], 0
        for _ in range(warmup):
            t = time.perf_counter()
            losses.append(one_step(i))
            warm.append(time.perf_counter() - t)
            i += 1
        matmul = None
        if roofline_on:
            shape = roofline.matmul_shape(cfg)
            matmul = (roofline.measure_torch(*shape, seed=seed) if framework == "torch"
                      else roofline.measure_mindspore(*shape, seed=seed))
        conn.send({"ready": True, "params": n_params, "build_s": build_s, "warmup_step_s": warm,
                   "warmup_losses": losses, "info": info, "matmul": matmul})
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
                 timeout: float, roofline_on: bool = True):
        self.framework, self.timeout = framework, timeout
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, framework, cfg, threads, warmup,
                                                          seed, roofline_on), daemon=True)
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
                 warmup: int, seed: int, timeout: float, log=print,
                 roofline_on: bool = True) -> dict:
    import roofline

    ctx = mp.get_context("spawn")
    tps_step = tokens_per_step(cfg)
    workers, ready = {}, {}
    try:
        for fw in frameworks:  # one at a time, so build and compile times are uncontended
            log(f"[{name}] starting {fw} worker (build + {warmup} warm-up steps) ...")
            workers[fw] = Worker(ctx, fw, cfg, threads, warmup, seed, timeout, roofline_on)
            ready[fw] = workers[fw].recv()
            kern = ready[fw]["info"].get("kernels_active")
            log(f"[{name}] {fw}: {ready[fw]['params']:,} parameters, build "
                f"{ready[fw]['build_s']:.1f} s, warm-up steps "
                + ", ".join(f"{s:.2f}" for s in ready[fw]["warmup_step_s"]) + " s"
                + ("" if kern is None else f", mindtf kernels {'on' if kern else 'OFF'}"))
            if fw in ("mindtf-graph", "mindtf-pynative") and kern is False:
                log(f"[{name}] WARNING: {fw} asked for mindtf's kernels but they are not active "
                    "(no compiler, or a failed build): it measures MindSpore's built-in ops.")
        counts = {fw: r["params"] for fw, r in ready.items()}
        if len(set(counts.values())) != 1:
            raise RuntimeError(f"[{name}] parameter counts differ between frameworks: {counts}")
        raw = {fw: [] for fw in frameworks}
        load_rounds = []
        for r in range(rounds):
            for fw in frameworks:
                time.sleep(0.2)  # let the other worker's spinning threads go idle
                res = workers[fw].run(steps)
                raw[fw].append(res["step_s"])
            load_rounds.append(loadavg())
            line = ", ".join(f"{fw} {tps_step * steps / sum(raw[fw][-1]):,.0f}"
                             for fw in frameworks)
            log(f"[{name}] round {r + 1}/{rounds}: tokens/s {line} | load "
                f"{load_rounds[-1][0] if load_rounds[-1] else '?'}")
    finally:
        for w in workers.values():
            w.close()

    model = {k: v for k, v in cfg.items() if k not in ("steps", "hparams")}
    out = {"model": model, "kind": cfg["kind"], "hparams": cfg["hparams"],
           "tokens_per_step": tps_step,
           "tokens_counted": ("batch x target length (target positions, padding included)"
                              if cfg["kind"] == "seq2seq" else "batch x block"),
           "steps_per_round": steps, "rounds": rounds, "warmup_steps": warmup,
           "params": counts, "loadavg_per_round": load_rounds, "frameworks": {},
           "ratio_vs_torch": {}}
    if cfg["kind"] == "seq2seq":
        batches = _random_batches(cfg, seed)
        out["nonpad_target_tokens_per_step"] = statistics.mean(
            int((b[2] != cfg["pad_id"]).sum()) for b in batches)
    tps = {}
    for fw in frameworks:
        per_round = [tps_step * len(t) / sum(t) for t in raw[fw]]
        tps[fw] = per_round
        steady = statistics.median([s for t in raw[fw] for s in t])
        first = ready[fw]["warmup_step_s"][0] if ready[fw]["warmup_step_s"] else None
        out["frameworks"][fw] = {
            "info": ready[fw]["info"],
            "build_s": ready[fw]["build_s"],
            "warmup_step_s": ready[fw]["warmup_step_s"],
            "warmup_losses": ready[fw]["warmup_losses"],
            "first_step_s": first,
            # the first call compiles (graph mode); what it took beyond a steady step
            "compile_s_est": (first - steady) if first is not None else None,
            "raw_step_s": raw[fw],  # [round][step] seconds
            "round_tokens_per_s": per_round,
            "median_step_s": steady,
            "tokens_per_s": summarise(per_round),
            "matmul": ready[fw]["matmul"],
        }
    if "torch" in frameworks:
        for fw in frameworks:
            if fw == "torch":
                continue
            ratios = [a / b for a, b in zip(tps[fw], tps["torch"])]
            out["ratio_vs_torch"][fw] = {"per_round": ratios, **summarise(ratios)}
    if "mindtf-graph" in frameworks and "mindtf-graph-builtin" in frameworks:
        sp = [a / b for a, b in zip(tps["mindtf-graph"], tps["mindtf-graph-builtin"])]
        out["kernels_speedup"] = {"per_round": sp, **summarise(sp)}
    ms_rates = [f["matmul"]["gflops"] for fw, f in out["frameworks"].items()
                if fw.startswith("mindtf-graph") and f["matmul"]]
    if ms_rates:
        rl = roofline.roofline(roofline.step_matmul_flops(cfg), statistics.median(ms_rates),
                               tps_step, {fw: f["median_step_s"]
                                          for fw, f in out["frameworks"].items()})
        rl["matmul_shape"] = list(roofline.matmul_shape(cfg))
        t = out["frameworks"].get("torch", {}).get("matmul")
        rl["torch_matmul_gflops"] = t["gflops"] if t else None
        out["roofline"] = rl
    return out


# --------------------------------------------------------------------------- report
def markdown_table(result: dict) -> str:
    rows = ["| config | framework | kernels | params | tokens/step | tokens/s median | min | max | "
            "ms/step | vs torch (median [min, max]) | first step s |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, c in result["configs"].items():
        for fw, f in c["frameworks"].items():
            t = f["tokens_per_s"]
            r = c["ratio_vs_torch"].get(fw)
            ratio = (f"{r['median']:.2f}x [{r['min']:.2f}, {r['max']:.2f}]" if r
                     else ("1.00x (reference)" if fw == "torch" else "-"))
            first = f"{f['first_step_s']:.2f}" if f["first_step_s"] is not None else "-"
            k = f["info"].get("kernels_active")
            kern = "-" if k is None else ("mindtf" if k else "built-in")
            rows.append(f"| {name} | {fw} | {kern} | {c['params'][fw]:,} | "
                        f"{c['tokens_per_step']:,} | {t['median']:,.0f} | {t['min']:,.0f} | "
                        f"{t['max']:,.0f} | {1000 * f['median_step_s']:.1f} | {ratio} | {first} |")
    return "\n".join(rows)


def roofline_lines(result: dict) -> str:
    lines = []
    for name, c in result["configs"].items():
        rl = c.get("roofline")
        if not rl:
            continue
        m, k, n = rl["matmul_shape"]
        near = ", ".join(f"{fw} {100 * x:.0f}%" for fw, x in rl["fraction_of_roofline"].items())
        torch_rate = (f"; torch.mm {rl['torch_matmul_gflops']:.1f} GFLOP/s"
                      if rl.get("torch_matmul_gflops") else "")
        lines.append(f"[{name}] MatMul roofline: {rl['matmul_gflop_per_step']:.2f} GFLOP/step at "
                     f"{rl['mindspore_matmul_gflops']:.1f} GFLOP/s (MindSpore MatMul "
                     f"({m},{k})x({k},{n}){torch_rate}) -> >= "
                     f"{1000 * rl['min_step_s']:.1f} ms/step, <= "
                     f"{rl['max_tokens_per_s']:,.0f} tokens/s; share of it reached: {near}")
        if "kernels_speedup" in c:
            s = c["kernels_speedup"]
            lines.append(f"[{name}] mindtf kernels vs built-in: {s['median']:.2f}x "
                         f"[{s['min']:.2f}, {s['max']:.2f}]")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default=None,
                   help=f"comma-separated, from {', '.join(CONFIGS)} (default: "
                        "nano,gpt2-small,translation; tiny,tiny-translation with --quick)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds R (default 5)")
    p.add_argument("--steps-per-round", type=int, default=None,
                   help="timed steps W per framework per round (default: nano 20, gpt2-small 3, "
                        "translation 5)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed warm-up steps per framework (default 3; the first compiles)")
    p.add_argument("--threads", type=int, default=None,
                   help=f"CPU threads for both frameworks (default: cores available = "
                        f"{default_threads()})")
    p.add_argument("--kernels", choices=KERNEL_CHOICES, default="on",
                   help="mindtf's custom CPU kernels: on (default), off (MINDTF_KERNELS=0), or "
                        "both (two mindtf workers: built-in and custom, each in its own process)")
    p.add_argument("--include-pynative", action="store_true",
                   help="also time mindtf in PyNative mode (same TrainStep, op by op)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--no-roofline", action="store_true",
                   help="skip the MatMul rate measurement (and the roofline)")
    p.add_argument("--tiny", action="store_true", help="use the tiny configs")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny GPT + tiny Transformer, 1 round, 2 steps, 1 warm-up step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds to wait for any single worker answer")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON path (default benchmarks/results/train_<date>.json; "
                        "train_busy_<date>.json when the machine was busy)")
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


def frameworks_for(a: argparse.Namespace) -> list:
    """Worker names in round order: mindtf graph (custom kernels, then built-in), torch,
    then PyNative."""
    graph = {"on": ["mindtf-graph"], "off": ["mindtf-graph-builtin"],
             "both": ["mindtf-graph", "mindtf-graph-builtin"]}[a.kernels]
    pynative = [] if not a.include_pynative else (
        ["mindtf-pynative-builtin"] if a.kernels == "off" else ["mindtf-pynative"])
    return graph + ([] if a.no_torch else ["torch"]) + pynative


def main(argv=None) -> dict:
    a = parse_args(argv)
    frameworks = frameworks_for(a)
    before = load_snapshot()
    started = datetime.now()
    result = {
        "benchmark": "train",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_before": before,
        "threads": a.threads,
        "quick": a.quick,
        "kernels": a.kernels,
        "frameworks": frameworks,
        "settings": {"rounds": a.rounds, "warmup_steps": a.warmup, "seed": a.seed,
                     "hparams_gpt": HPARAMS, "distinct_batches": N_BATCHES,
                     "order": "per round: " + " then ".join(frameworks),
                     "torch_model": "benchmarks/torch_gpt.py (eager, SDPA is_causal) / "
                                    "benchmarks/torch_transformer.py (torch.nn.Transformer); "
                                    "torch.optim.AdamW defaults, clip_grad_norm_",
                     "mindtf_model": "mindtf GPT / Transformer + TrainStep (AdamW fused=True), "
                                     "GRAPH_MODE; *-builtin: MINDTF_KERNELS=0"},
        "configs": {},
    }
    warning = busy_now(a.threads)
    if warning:
        print(f"WARNING: {warning}", flush=True)
    print(f"bench_train: {', '.join(a.configs)} | {' vs '.join(frameworks)} | threads={a.threads} "
          f"| rounds={a.rounds} | {result['machine']['cpu']} | load {before['loadavg']}",
          flush=True)
    for name in a.configs:
        cfg = resolve_config(name)
        steps = a.steps_per_round or cfg["steps"]
        result["configs"][name] = bench_config(
            name, cfg, frameworks, a.threads, a.rounds, steps, a.warmup, a.seed, a.timeout,
            log=lambda s: print(s, flush=True), roofline_on=not a.no_roofline)
    result["wall_s"] = (datetime.now() - started).total_seconds()
    after = load_snapshot()
    result["load_after"] = after
    result["loadavg_at_end"] = after["loadavg"]
    extra = ([] if a.quick or a.rounds >= MIN_REPORTABLE_ROUNDS else
             [f"only {a.rounds} rounds (at least {MIN_REPORTABLE_ROUNDS} for a reportable "
              "median)"])
    ok, reasons = reportability(before, after, a.quick, extra)
    result["reportable"], result["not_reportable_because"] = ok, reasons
    out = write_json(result, result_path("train", a.quick, reasons, a.out))
    print()
    print(markdown_table(result))
    print(roofline_lines(result))
    print(f"\ntokens/s = tokens per step (GPT: batch x block; translation: batch x target length) "
          f"/ seconds per optimiser step; warm-up excluded; threads={a.threads}; ratio = median "
          "over rounds of mindtf/torch.")
    print(f"load before {before['loadavg']}, after {after['loadavg']} | {before['uptime']}")
    if not ok:
        print(loud_not_reportable(reasons), flush=True)
    print(f"wrote {out} ({result['wall_s']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
