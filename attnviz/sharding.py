"""Work split over the processes ``torchrun`` starts, and its results brought back in order.

``torchrun --nproc_per_node N -m attnviz ...`` starts N processes with RANK and WORLD_SIZE in
their environment. Training (:mod:`attnviz.training.loop`) starts torch.distributed with
:func:`init_distributed`; the corpus commands (``translate``, ``align``, ``eval``) open
:func:`corpus_ranks`: each process decodes every N-th input line (so each gets lines of every
length and the shares take about as long), and process 0 gathers the results back into input
order and alone writes them. Without torchrun there is one process, which starts nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch.distributed as dist

__all__ = ["Ranks", "corpus_ranks", "in_input_order", "init_distributed", "leads"]

Item = TypeVar("Item")
Value = TypeVar("Value")


def init_distributed(device: str = "cpu") -> tuple[int, int]:
    """(rank, world size); starts torch.distributed (gloo on CPU, NCCL on CUDA) when
    launched by torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def leads() -> bool:
    """Whether this process speaks for the command: the only one, or torchrun's rank 0
    (the others would repeat the same messages)."""
    return int(os.environ.get("WORLD_SIZE", "1")) == 1 or int(os.environ.get("RANK", "0")) == 0


def in_input_order(shares: Sequence[Sequence[Item]]) -> list[Item]:
    """The items of every rank's share (``Ranks.share`` of each rank, in rank order) back in
    the order of the input they were taken from."""
    merged: list[Item] = []
    for position in range(max((len(share) for share in shares), default=0)):
        merged += [share[position] for share in shares if position < len(share)]
    return merged


@dataclass(frozen=True)
class Ranks:
    """This process's place among torchrun's processes, with torch.distributed (gloo)
    started: ``rank`` 0 to ``world - 1``."""

    rank: int
    world: int

    @property
    def leads(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[Item]) -> list[Item]:
        """This process's items: every ``world``-th, starting at its rank."""
        return list(items[self.rank :: self.world])

    def gather(self, mine: Sequence[Value]) -> list[Value] | None:
        """Every process's results of its :meth:`share`, in input order, on rank 0 (None on
        the others). Every process must call it (results are pickled)."""
        shares: list[Sequence[Value]] | None = None
        if self.leads:
            shares = [[] for _ in range(self.world)]
        dist.gather_object(list(mine), shares, dst=0)
        return in_input_order(shares) if shares is not None else None

    def broadcast(self, value: Value) -> Value:
        """Rank 0's ``value`` (pickled), on every process; every process must call it."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


@contextmanager
def corpus_ranks() -> Iterator[Ranks | None]:
    """The ranks of a torchrun launch of more than one process, with gloo started and
    stopped again at the end of the block; None without torchrun."""
    rank, world = init_distributed()
    if world == 1:
        yield None
        return
    try:
        yield Ranks(rank, world)
    finally:
        dist.destroy_process_group()
