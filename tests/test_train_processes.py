"""``attnviz train --processes N``: the command starts its own data-parallel workers; what
they learn, Ctrl-C and a failed worker (the folder stays resumable), and the default."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train import write_recipe

import attnviz
from attnviz.data import bucket_batches
from attnviz.training.batching import process_share
from attnviz.training.history import DEV_LOSS, STEP, TRAIN_LOSS
from attnviz.training.state import STATE_FILE, state_summary
from attnviz.training.workers import (
    MIN_PROCESS_TOKENS,
    automatic_processes,
    threads_per_process,
    usable_cores,
)

RUN = Path("pretrained/tiny-reversal")


def start(root: Path, *options: str) -> subprocess.Popen:
    """``attnviz train tiny.toml`` in its own process group, as a terminal would run it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "attnviz", "train", "tiny.toml", *options],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Ctrl-C's default action, as a shell gives it: a process inherits an ignored SIGINT,
        # and the test runner's may be ignored by then (Python then raises no
        # KeyboardInterrupt, and the run would not stop).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def history(root: Path) -> list[dict[str, str]]:
    with open(root / RUN / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def wait_for_state(root: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not (root / RUN / STATE_FILE).is_file():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_processes_share_each_of_one_process_batches_evenly():
    """Two processes train on one process's batches, each half of every one, with the same
    target lengths and as many target tokens within one pair's length."""
    rng = random.Random(0)
    encoded = [([5] * rng.randint(1, 30), [5] * rng.randint(1, 30)) for _ in range(2000)] + [
        ([5] * 3, [5] * 199)
    ]  # alone in a batch of 200 slots: no share for two
    batches = bucket_batches(encoded, 200, seed=0)
    assert [len(b) for b in batches].count(1) == 1
    shares = [process_share(batches, rank, 2) for rank in (0, 1)]
    assert process_share(batches, 0, 1) == batches
    both = [b for b in batches if len(b) > 1]
    assert len(shares[0]) == len(shares[1]) == len(both)
    for batch, first, second in zip(both, *shares, strict=True):
        assert sorted(first + second) == sorted(batch)
        lengths = [[len(encoded[i][1]) for i in share] for share in (first, second)]
        assert abs(sum(lengths[0]) - sum(lengths[1])) <= max(lengths[0] + lengths[1])
        assert abs(max(lengths[0]) - max(lengths[1])) <= 1


def test_two_processes_learn_what_one_does(tmp_path):
    """The same recipe in two worker processes: a checkpoint, its history, and losses within
    noise of one process's (pinned in test_train: train 4.8658, 3.8608; dev 3.4729, 3.2935)."""
    write_recipe(tmp_path, max_steps=40, validate_every=20)
    process = start(tmp_path, "--processes", "2")
    assert process.wait(timeout=300) == 0, process.stderr.read()
    rows = history(tmp_path)
    assert [int(row[STEP]) for row in rows] == [20, 40]
    assert [float(row[TRAIN_LOSS]) for row in rows] == pytest.approx([4.8658, 3.8608], abs=0.15)
    assert [float(row[DEV_LOSS]) for row in rows] == pytest.approx([3.4729, 3.2935], abs=0.08)
    card = attnviz.load(tmp_path / RUN).checkpoint.card["training"]
    assert (card["processes"], card["threads_per_process"]) == (2, 1)


def test_ctrl_c_stops_every_worker_and_resume_continues(tmp_path):
    write_recipe(tmp_path, max_steps=60, validate_every=10)
    process = start(tmp_path, "--processes", "2")
    wait_for_state(tmp_path, process)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    assert process.wait(timeout=120) == 130
    assert "continue the run with --resume" in process.stderr.read()
    stopped_at = state_summary(tmp_path / RUN / STATE_FILE)["step"]
    assert 10 <= stopped_at < 60
    resumed = start(tmp_path, "--processes", "2", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert [int(row[STEP]) for row in history(tmp_path)] == list(range(10, 61, 10))


def test_workers_stop_together_at_the_time_budget(tmp_path):
    """Each worker has its own clock: they agree on the step to stop at (else one would wait
    for the other's gradients for ever)."""
    write_recipe(tmp_path, max_steps=100000, validate_every=100000)
    process = start(tmp_path, "--processes", "2", "--max-minutes", "0.1")
    assert process.wait(timeout=240) == 0, process.stderr.read()
    state = state_summary(tmp_path / RUN / STATE_FILE)
    assert state["elapsed_s"] >= 6 and 0 < state["step"] < 100000


def test_a_failed_worker_stops_the_others(tmp_path):
    write_recipe(tmp_path, max_steps=100000, validate_every=10)
    process = start(tmp_path, "--processes", "2")
    wait_for_state(tmp_path, process)
    workers = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(workers) == 2
    os.kill(int(workers[1]), signal.SIGKILL)
    assert process.wait(timeout=120) != 0
    assert "a training process failed" in process.stderr.read()
    assert not any(Path(f"/proc/{worker}").exists() for worker in workers)  # reaped
    assert state_summary(tmp_path / RUN / STATE_FILE)["step"] >= 10
    assert attnviz.load(tmp_path / RUN).name == "tiny-reversal"


def test_the_default_is_one_process_per_core_the_run_may_use():
    cores = usable_cores()
    assert automatic_processes("cpu", None, 10**6) == cores
    assert automatic_processes("cpu", 1, 2000) == 1
    assert automatic_processes("cpu", 10**6, 10**6) == cores
    assert automatic_processes("cpu", None, 2 * MIN_PROCESS_TOKENS) == min(cores, 2)
    assert automatic_processes("cpu", None, MIN_PROCESS_TOKENS - 1) == 1
    assert automatic_processes("cuda", None, 10**6) == 1
    assert threads_per_process(4, 2) == 2
    assert threads_per_process(1, 2) == 1
