"""Data-parallel training on several processes, started by MindSpore's own launcher ``msrun``.

::

    python -m mindtf train --distributed 2 ARGS          checks ARGS, then hands over to msrun:
        │
        ▼
    msrun --worker_num=2 --local_worker_num=2 --master_port=P --log_dir=RUN/msrun_logs
          --join=True ... python -m mindtf train --distributed 2 ARGS
        ├── scheduler (MS_ROLE=MS_SCHED)  networking only: mindspore.communication.init() serves
        │                                  the cluster and ends the process when the job ends
        ├── worker 0  (MS_ROLE=MS_WORKER)  trains on rows 0..B-1 of every global batch,
        │                                  scores validation batches 0, 2, 4, ..., writes the files
        └── worker 1  (MS_ROLE=MS_WORKER)  trains on rows B..2B-1, scores batches 1, 3, 5, ...

Inside a worker (:func:`init_data_parallel`, called by ``mindtf.cli``): ``init()`` joins the
cluster (``mccl`` collectives on CPU, ``nccl`` on GPU, ``hccl`` on Ascend) and MindSpore's
data-parallel context is set (gradients mean). Then, at every optimiser step::

    global batch (N*B rows, drawn as ONE process with batch N*B would draw it)
        --shard_rows--> this worker's B rows --> loss, gradients (compiled TrainStep)
        --AllReduce / N inside the same compiled graph--> the mean gradient and loss, equal on
        every worker --> clip, NaN guard, AdamW: the weights stay identical everywhere

``train.batch_size`` is the batch of ONE worker: a step sees ``N x batch_size x grad_accum``
sequences. The gradient is the mean of the workers' mean-loss gradients, as with gradient
accumulation: for equal token counts per row (char-lm) that is exactly the gradient of the
global batch; for padded batches (translation) each worker's tokens count with its worker's
weight. Evaluation: each worker scores every N-th batch and the (loss sum, token count) pairs
are summed over workers (:func:`all_reduce_sums`), so the whole set is scored once, exactly.
Only rank 0 (:attr:`World.is_main`) writes checkpoints, ``metrics.jsonl``, plots, summaries.

A worker that dies (an error, a kill, out of memory): ``msrun --join=True`` sees it exit and
kills the other workers; the scheduler follows once their heartbeat is gone (MS_NODE_TIMEOUT,
30 s by default). :func:`launch` then names the worker, its exit code, its last error line and
its log. Without msrun's ``--join`` a surviving worker stops too, when its collective gives up
(MS_CPU_COMM_OP_TIMEOUT seconds on CPU: about 30 by default, :data:`COMM_TIMEOUT` under
:func:`launch`, which leaves rank 0 time to write a large checkpoint while the others wait).
Nothing here runs at import time or imports MindSpore before MindSpore is in use.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

from mindtf.errors import ConfigError, Interrupted, MindtfError

__all__ = ["World", "WorkerFailed", "msrun_role", "world", "init_data_parallel", "shard_rows",
           "shard_items", "all_reduce_sums", "msrun_command", "launch", "free_port",
           "CLUSTER_TIMEOUT", "COMM_TIMEOUT", "MAX_WORKERS"]

T = TypeVar("T")

#: seconds msrun waits for every worker to join the cluster (``--cluster_time_out``)
CLUSTER_TIMEOUT = 120
#: seconds a CPU collective waits for the other workers (MS_CPU_COMM_OP_TIMEOUT; MindSpore's
#: default of about 30 s is shorter than rank 0 may need to write a large checkpoint)
COMM_TIMEOUT = 600
#: the most workers ``--distributed`` starts on one machine
MAX_WORKERS = 64
_PID_LINE = "mindtf data parallel: worker {rank} of {size}, pid {pid}"


class WorkerFailed(MindtfError):
    """A worker of a distributed run exited with an error or was killed."""


@dataclass(frozen=True)
class World:
    """Where this process stands in a data-parallel run: worker ``rank`` of ``size``.
    ``str(world)`` is the line a worker prints when it joins; :func:`launch` reads the pid from
    it to name a worker that dies."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the worker that writes the run's files."""
        return self.rank == 0

    def __str__(self) -> str:
        return _PID_LINE.format(rank=self.rank, size=self.size, pid=os.getpid())


def msrun_role() -> Optional[str]:
    """``"worker"`` or ``"scheduler"`` in a process started by msrun, else ``None`` (read from
    msrun's MS_ROLE; imports nothing)."""
    return {"MS_WORKER": "worker", "MS_SCHED": "scheduler"}.get(os.environ.get("MS_ROLE", ""))


def world() -> World:
    """This process's :class:`World`: ``World(0, 1)`` unless :func:`init_data_parallel` joined a
    cluster."""
    if msrun_role() != "worker" or "mindspore" not in sys.modules:
        return World()
    from mindspore.communication import GlobalComm, get_group_size, get_rank

    if not GlobalComm.INITED:
        return World()
    return World(int(get_rank()), int(get_group_size()))


def init_data_parallel() -> World:
    """Join msrun's cluster and set MindSpore's data-parallel context (gradients mean).

    Call it after :func:`mindtf.runtime.setup` (which picks the device). Outside msrun it does
    nothing and returns ``World(0, 1)``. In msrun's scheduler process ``init()`` serves the
    cluster and ends the process when the job is over: nothing after this call runs there.
    """
    if msrun_role() is None:
        return World()
    import mindspore as ms
    from mindspore.communication import init

    init()
    here = world()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL,
                                 gradients_mean=True, device_num=here.size)
    return here


def shard_rows(arrays: Sequence, here: World) -> Tuple:
    """This worker's rows of a global batch: rows ``[rank*B, (rank+1)*B)`` of each array, where
    ``B = rows / size``::

        >>> import numpy as np
        >>> x = np.arange(8).reshape(4, 2)
        >>> shard_rows((x,), World(rank=1, size=2))[0].tolist()
        [[4, 5], [6, 7]]
    """
    if here.size == 1:
        return tuple(arrays)
    rows = len(arrays[0])
    if rows % here.size:
        raise ConfigError(f"a global batch of {rows} rows cannot be split evenly over "
                          f"{here.size} workers: build the batch source with "
                          f"{here.size} x train.batch_size rows.")
    b = rows // here.size
    return tuple(a[here.rank * b:(here.rank + 1) * b] for a in arrays)


def shard_items(items: Iterable[T], here: World) -> Iterator[T]:
    """Every ``size``-th item, starting at ``rank`` (this worker's validation batches)."""
    for i, item in enumerate(items):
        if i % here.size == here.rank:
            yield item


def all_reduce_sums(values: Sequence[float], here: World) -> List[float]:
    """Sum floats over all workers (AllReduce). Each value travels as two float32 numbers
    (``hi + lo``), so the sum keeps about 14 significant digits instead of float32's 7."""
    if here.size == 1:
        return [float(v) for v in values]
    import numpy as np
    from mindspore import Tensor, ops

    x = np.asarray(values, dtype=np.float64)
    hi = x.astype(np.float32)
    lo = (x - hi.astype(np.float64)).astype(np.float32)
    summed = ops.AllReduce()(Tensor(np.concatenate([hi, lo]))).asnumpy().astype(np.float64)
    return (summed[:len(x)] + summed[len(x):]).tolist()


# --------------------------------------------------------------------------- launching
def free_port() -> int:
    """A TCP port that is free on this machine right now (for msrun's scheduler)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def msrun_command(workers: int, argv: Sequence[str], log_dir: os.PathLike, port: int,
                  cluster_timeout: int = CLUSTER_TIMEOUT) -> List[str]:
    """The msrun command line that starts ``python -m mindtf ARGV`` on ``workers`` workers of
    this machine (msrun itself runs as ``python -m mindspore.parallel.cluster.run``)."""
    return [sys.executable, "-m", "mindspore.parallel.cluster.run", f"--worker_num={workers}",
            f"--local_worker_num={workers}", f"--master_port={port}", f"--log_dir={log_dir}",
            "--join=True", f"--cluster_time_out={cluster_timeout}",
            f"--tail_worker_log={workers}",  # none: launch() shows worker 0's log itself
            "python", "-m", "mindtf", *argv]


def _child_env() -> dict:
    """msrun runs the workers as ``python``: put this interpreter's folder first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    found = shutil.which("python", path=env["PATH"])
    if found is None or not os.path.samefile(found, sys.executable):
        raise ConfigError(f"msrun starts its workers as 'python', but 'python' next to "
                          f"{sys.executable} is {found or 'missing'}: run mindtf from a virtual "
                          "environment (which has a 'python'), or call msrun yourself (README, "
                          "'Several devices (msrun)').")
    env.setdefault("GLOG_v", "3")  # MindSpore's C++ log: errors only
    env.setdefault("MS_CPU_COMM_OP_TIMEOUT", str(COMM_TIMEOUT))
    return env


def launch(workers: int, argv: Sequence[str], log_dir: os.PathLike, *, port: Optional[int] = None,
           resume_hint: Callable[[], str] = str, cluster_timeout: int = CLUSTER_TIMEOUT) -> int:
    """Run ``python -m mindtf ARGV`` on ``workers`` processes through msrun and wait.

    Worker 0's output is shown as it comes; every worker's output is in ``log_dir``
    (``worker_R.log``, msrun's own messages in ``msrun.log``). Returns 0 when every worker
    succeeded; raises :class:`WorkerFailed` naming the worker that failed, and
    :class:`~mindtf.errors.Interrupted` on Ctrl-C (msrun then kills the workers at once).
    ``resume_hint()`` (asked when it fails) is the command that continues the run, or "".
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--distributed {workers}: give 1 to {MAX_WORKERS} workers.")
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("*.log"):  # a log from an earlier launch would be misread
        old.unlink()
    cmd = msrun_command(workers, argv, log_dir.resolve(), port or free_port(), cluster_timeout)
    env = _child_env()
    print(f"msrun: {workers} workers, logs in {log_dir}", flush=True)
    with open(log_dir / "msrun.log", "w", encoding="utf-8") as msrun_log:
        proc = subprocess.Popen(cmd, env=env, stdout=msrun_log, stderr=subprocess.STDOUT)
        try:
            _follow(proc, log_dir / "worker_0.log")
        except KeyboardInterrupt:  # msrun got the same Ctrl-C and kills the workers
            proc.wait()
            hint = resume_hint()
            raise Interrupted("interrupted: msrun stopped the workers at once, without a "
                              "checkpoint on the way out" + (f"\ncontinue from the last "
                                                             f"checkpoint: {hint}" if hint
                                                             else "")) from None
    if proc.returncode == 0:
        return 0
    raise WorkerFailed(_failure(log_dir, proc.returncode, resume_hint()))


_MS_LOG_LINE = re.compile(rb"^\[(DEBUG|INFO|WARNING)\] [A-Z_]+\(\d+,")  # MindSpore's C++ log


def _follow(proc: subprocess.Popen, log: Path) -> None:
    """Copy ``log`` to stdout line by line as it grows, until ``proc`` ends (then the rest),
    leaving out MindSpore's own INFO / WARNING lines (they stay in the log)."""
    pos, pending = 0, b""
    while True:
        done = proc.poll() is not None
        if log.is_file():
            with open(log, "rb") as fh:
                fh.seek(pos)
                chunk = fh.read()
            pos += len(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            if done and pending:
                lines, pending = lines + [pending], b""
            text = b"".join(ln + b"\n" for ln in lines if not _MS_LOG_LINE.match(ln))
            if text:
                sys.stdout.write(text.decode("utf-8", "replace"))
                sys.stdout.flush()
        if done:
            return
        time.sleep(0.3)


def _failure(log_dir: Path, code: int, resume_hint: str) -> str:
    """Which worker failed first, how, and where its log is."""
    msrun_text = _read(log_dir / "msrun.log")
    pids = {}  # pid -> rank, from the line each worker prints when it joins
    for log in sorted(log_dir.glob("worker_*.log")):
        m = re.search(r"mindtf data parallel: worker (\d+) of \d+, pid (\d+)", _read(log))
        if m:
            pids[int(m.group(2))] = int(m.group(1))
    first = re.search(r"Worker process (\d+) exit with exception\. Error code: (-?\d+)",
                      msrun_text)
    where = f"logs: {log_dir}"
    if first:
        pid, rc = int(first.group(1)), int(first.group(2))
        rank = pids.get(pid)
        log = log_dir / f"worker_{rank}.log" if rank is not None else None
        who = f"worker {rank}" if rank is not None else f"a worker (pid {pid})"
        how = (f"was killed by signal {-rc} (out of memory, or killed by hand)" if rc < 0
               else f"exited with code {rc}")
        error = _last_error(_read(log)) if log else ""
        text = f"{who} {how}" + (f": {error}" if error else "")
        if log:
            where = f"its log: {log}"
    else:
        error = next(filter(None, (_last_error(_read(p))
                                   for p in sorted(log_dir.glob("worker_*.log")))), "")
        text = f"the distributed run failed (msrun exit code {code})" + (
            f": {error}" if error else "")
    return (f"{text}. msrun stopped the other workers ({where}; msrun's own messages: "
            f"{log_dir / 'msrun.log'})." + (f"\ncontinue from the last checkpoint: {resume_hint}"
                                            if resume_hint else ""))


def _last_error(text: str) -> str:
    """A log's last ``error: ...`` line (mindtf's one-line errors), else its last exception."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("error: "):
            return ln[len("error: "):]
    for ln in reversed(lines):
        if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt)\b.*", ln):
            return ln
    return ""


def _read(path: Optional[Path]) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path else ""
    except OSError:
        return ""
