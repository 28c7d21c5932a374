"""``attnviz train --processes N``: the data-parallel worker processes, started by the command
itself (as ``torchrun --nproc_per_node N`` would), one per core by default on a CPU.

On a CPU, two processes of one thread each train faster than one process of two threads:
the recurrence is hundreds of small operations per batch that a second thread barely
speeds up, while a second process does half of each batch's work in parallel with all its
Python around it (README, Performance). The workers are ``python -m attnviz train`` again,
with torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so the training
code is the one that ``torchrun`` runs. When one worker fails the others are stopped; on
Ctrl-C (which reaches every worker, as they share the terminal's process group) the workers
stop by themselves, leaving the run's folder as it was at its last save, for ``--resume``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = [
    "MIN_PROCESS_TOKENS",
    "automatic_processes",
    "run_workers",
    "threads_per_process",
    "under_launcher",
    "usable_cores",
]

# The fewest target tokens of a batch that a process gets by default: with fewer, the
# hundreds of small operations per step that do not grow with the batch would dominate.
MIN_PROCESS_TOKENS = 500
# How long stopped workers get to end by themselves before they are killed.
_GRACE_S = 30.0


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as ``taskset`` or a container
    sets it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def under_launcher() -> bool:
    """Whether this process is one of several that torchrun (or :func:`run_workers`) started."""
    return "WORLD_SIZE" in os.environ


def automatic_processes(device: str, threads: int | None, max_tokens: int) -> int:
    """The number of training processes ``--processes`` picks by default: one per core that
    the run may use (the recipe's ``threads``, else every usable core), but no more than
    leaves each process ``MIN_PROCESS_TOKENS`` of a batch's ``max_tokens``; 1 on a GPU, where
    one process keeps the device busy."""
    if device != "cpu":
        return 1
    cores = min(threads, usable_cores()) if threads else usable_cores()
    return max(1, min(cores, max_tokens // MIN_PROCESS_TOKENS))


def threads_per_process(threads: int | None, processes: int) -> int:
    """Torch threads for each of ``processes`` processes: the run's cores (the recipe's
    ``threads``, else every usable core) shared out, at least one each."""
    return max(1, (threads or usable_cores()) // processes)


def run_workers(argv: Sequence[str], processes: int, threads: int) -> int:
    """Run ``python -m attnviz *argv`` in ``processes`` processes of one torch.distributed
    group, each with ``threads`` torch threads; returns the exit code: 0 when all succeed,
    else the first failure's (128 + the signal for one killed by a signal; the others are
    then stopped), 130 after Ctrl-C."""
    port = _free_port()
    command = [sys.executable, "-m", "attnviz", *argv]
    workers = [
        subprocess.Popen(command, env=_worker_env(rank, processes, port, threads))
        for rank in range(processes)
    ]
    try:
        while True:
            codes = [worker.poll() for worker in workers]
            failed = next((code for code in codes if code not in (None, 0)), None)
            if failed is not None:
                # SIGINT, as Ctrl-C: a worker that has saved nothing yet removes its files
                _stop(workers, signal.SIGINT)
                return failed if failed > 0 else 128 - failed  # killed by a signal: 128 + it
            if all(code == 0 for code in codes):
                return 0
            time.sleep(0.2)
    except KeyboardInterrupt:
        _stop(workers, None)  # they got the same SIGINT: let them end their step and exit
        return 130


def _worker_env(rank: int, world: int, port: int, threads: int) -> dict[str, str]:
    """torchrun's environment for worker ``rank`` of ``world`` on this machine."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(world),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


def _stop(workers: list[subprocess.Popen], first: signal.Signals | None) -> None:
    """Send ``first`` (None: nothing) to the workers still running, give them ``_GRACE_S`` to
    end, then kill what is left (at once on a second Ctrl-C)."""
    for worker in workers:
        if first is not None and worker.poll() is None:
            worker.send_signal(first)
    deadline = time.monotonic() + _GRACE_S
    try:
        for worker in workers:
            worker.wait(max(deadline - time.monotonic(), 0.0))
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def _free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
