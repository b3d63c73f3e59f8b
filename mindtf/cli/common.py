"""What several commands share: the runtime and dataset options, and the end-of-run reports.

    add_runtime_arguments --> --device, --threads   --setup_runtime--> mindtf.runtime.setup
                                  (+ in an msrun worker: mindtf.distributed.init_data_parallel)
    add_distributed_arguments --> --distributed N, --master-port  --launch_data_parallel--> msrun
    add_data_arguments    --> --mirror, --data-dir, --offline  --fetch_kwargs--> mindtf.data
      + add_limit_arguments --> --deadline, --stall-bytes, --stall-seconds, --max-download-mb
    a recipe's summary dict --print_char_lm_summary / print_translation_summary--> stdout
"""
from __future__ import annotations

import argparse
from typing import Any, Dict

__all__ = ["add_runtime_arguments", "add_data_arguments", "add_limit_arguments",
           "add_distributed_arguments", "launch_data_parallel", "fetch_kwargs", "setup_runtime",
           "print_char_lm_summary", "print_translation_summary"]


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("runtime")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu", "ascend"],
                   help="where to run (auto: Ascend > GPU > CPU)")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU op threads (default: the cores available to this process)")


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("several devices (data parallel, MindSpore's msrun)")
    g.add_argument("--distributed", type=int, default=None, metavar="N",
                   help="train on N worker processes of this machine, started by msrun: each "
                        "trains on its share of every global batch of N x train.batch_size, the "
                        "gradients are averaged; logs in OUT_DIR/msrun_logs (ignored inside an "
                        "msrun worker, so the same command line can be given to msrun by hand)")
    g.add_argument("--master-port", type=int, default=None, metavar="PORT",
                   help="msrun's scheduler port (default: a free one)")


def launch_data_parallel(args: argparse.Namespace, out_dir) -> int:
    """Run this very command on ``--distributed N`` workers through msrun (see
    :func:`mindtf.distributed.launch`); inside msrun the flag is ignored."""
    from pathlib import Path

    from mindtf.distributed import launch

    def resume_hint() -> str:  # once a checkpoint is there
        if not (Path(out_dir) / "checkpoints" / "latest").is_file():
            return ""
        return (f"python -m mindtf train --distributed {args.distributed} --resume "
                f"--train.out_dir {out_dir}")

    return launch(args.distributed, list(args.command_line), Path(out_dir) / "msrun_logs",
                  port=args.master_port, resume_hint=resume_hint)


def add_data_arguments(parser: argparse.ArgumentParser, title: str = "data") -> None:
    g = parser.add_argument_group(title)
    g.add_argument("--mirror", default=None, metavar="DIR_OR_URL[,...]",
                   help="dataset mirror(s) tried first (default: $MINDTF_DATA_MIRROR)")
    g.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where datasets are kept (default: $MINDTF_DATA_DIR or the checkout's "
                        "data/)")
    g.add_argument("--offline", action="store_true", help="never use the network")
    add_limit_arguments(g)


def add_limit_arguments(g: Any) -> None:
    """The limits of one download source (:mod:`mindtf.data.limits`): a stalled, trickling or
    endless server is abandoned and the next source tried."""
    from mindtf.data.limits import DEADLINE, MAX_BYTES, STALL_BYTES, STALL_SECONDS

    g.add_argument("--deadline", type=float, default=DEADLINE, metavar="SECONDS",
                   help="give up on a download source after this many seconds in all, retries "
                        "included (0: no deadline)")
    g.add_argument("--stall-bytes", type=int, default=STALL_BYTES, metavar="BYTES",
                   help="give up on a source that delivers fewer bytes than this in "
                        "--stall-seconds (0: no minimum)")
    g.add_argument("--stall-seconds", type=float, default=STALL_SECONDS, metavar="SECONDS",
                   help="the window of --stall-bytes")
    g.add_argument("--max-download-mb", type=float, default=MAX_BYTES / 2 ** 20, metavar="MB",
                   help="the most one download may write when the registry gives no size (with "
                        "a size: that size + 10%% + 1 MiB)")


def fetch_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of :func:`mindtf.data.fetch` given by the dataset options."""
    kw: Dict[str, Any] = {}
    for name in ("deadline", "stall_bytes", "stall_seconds"):
        if getattr(args, name, None) is not None:
            kw[name] = getattr(args, name)
    if getattr(args, "max_download_mb", None) is not None:
        kw["max_bytes"] = int(args.max_download_mb * 2 ** 20)
    if getattr(args, "mirror", None):
        kw["mirror"] = args.mirror
    if getattr(args, "data_dir", None):
        kw["data_dir"] = args.data_dir
    if getattr(args, "offline", False):
        kw["offline"] = True
    return kw


def setup_runtime(args: argparse.Namespace, mode: str, seed: int):
    """:func:`mindtf.runtime.setup` with the runtime options; a wrong ``--device`` (e.g. gpu on a
    CPU-only MindSpore) is a one-line :class:`~mindtf.errors.ConfigError`.

    In a process msrun started, the worker then joins the data-parallel cluster
    (:func:`mindtf.distributed.init_data_parallel`; msrun's scheduler process ends there), and
    the CPU cores are shared between the workers unless ``--threads`` says otherwise."""
    import os

    from mindtf.distributed import init_data_parallel, msrun_role
    from mindtf.errors import ConfigError
    from mindtf.runtime import default_threads, setup

    threads = args.threads
    workers = int(os.environ.get("MS_WORKER_NUM", "1") or 1) if msrun_role() else 1
    if threads is None and workers > 1:
        threads = max(1, default_threads() // workers)
    try:
        info = setup(device=args.device, mode=mode, seed=seed, threads=threads)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if msrun_role():
        print(init_data_parallel(), flush=True)  # the line mindtf.distributed.launch reads
    return info


def _val_scope(s: Dict[str, Any], unit: str) -> str:
    """What the validation loss of a summary covers: ``"whole validation set"`` or ``"first 5
    validation batches"`` (``train.eval_max_batches``)."""
    n = s.get("eval_max_batches")
    return f"whole validation {unit}" if n is None else f"first {n} validation batches"


def print_char_lm_summary(s: Dict[str, Any]) -> None:
    """Report the end of a char-LM run (:func:`mindtf.recipes.char_lm.train_char_lm`'s summary)."""
    print()
    val = "n/a" if s.get("val_loss") is None else f"{s['val_loss']:.4f}"
    print(f"validation loss: {val} ({_val_scope(s, 'set')}), {s['steps']} steps, "
          f"{s['seconds']:.0f} s of training, {s['tokens_per_s']:,.0f} tokens/s")
    print("sample:")
    print("-" * 60)
    print(s["sample"])
    print("-" * 60)
    print(f"checkpoint: {s['best_checkpoint']}   loss plot: {s['plot']}")
    print(f"continue a prompt: python -m mindtf generate --checkpoint {s['best_checkpoint']} "
          "--prompt 'ROMEO:'")


def print_translation_summary(s: Dict[str, Any], data) -> None:
    """Report the end of a translation run (``train_translation``'s summary; ``data``: its
    :class:`~mindtf.recipes.translation.TranslationData`)."""
    print()
    if s.get("val_loss") is not None:
        print(f"validation loss: {s['val_loss']:.4f} (perplexity {s['val_ppl']:.2f}, "
              f"{_val_scope(s, 'split')}), {s['steps']} steps, {s['seconds']:.0f} s of training, "
              f"{s['tokens_per_s']:,.0f} target tokens/s")
    if "bleu" in s:
        print(f"BLEU on {data.test_split} ({s['test_sentences']} sentences, "
              f"{'greedy' if data.beam_size == 1 else f'beam {data.beam_size}'}): "
              f"{s['bleu']:.2f}")
        print(f"  {s['bleu_text']}")
        for ex in s.get("samples", []):
            print(f"  source:      {ex['source']}")
            print(f"  reference:   {ex['reference']}")
            print(f"  translation: {ex['translation']}")
        print(f"scores: {s['bleu_file']}")
    print(f"checkpoint: {s['best_checkpoint']}   loss plot: {s['plot']}")
    print(f"translate: python -m mindtf translate --checkpoint {s['best_checkpoint']} "
          "\"Ein Hund läuft über die Wiese.\"")
