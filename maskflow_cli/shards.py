"""Training windows streamed from a folder of token shards, so memory stays flat in the data's size.

The shards (token_shards.py) are dealt to the readers: every DistributedDataParallel rank runs
``workers`` DataLoader worker processes (or reads in its own process with ``workers=0``), and reader
``rank * workers + worker`` reads shards ``reader, reader + readers, ...`` only, so no two readers
read the same shard. A reader goes through its shards in an order seeded by (seed, reader, epoch),
holding one shard in memory at a time; it shuffles that shard's clips and yields a window of
``window`` frames of each at a random start, and starts over with the next epoch's order when done.

Every position of a reader's stream follows from (seed, reader, epoch, shard) alone, so a resumed run
starts each reader where it stood after the checkpoint's step without reading what it skips: the
DataLoader takes batches from its workers in turn, so reader w of a rank made its batches w,
w + workers, ...

Axis legend: B batch, T frames, H, W token grid.
"""

from __future__ import annotations

import os
from typing import Iterator

import torch
import torch.distributed as dist
from safetensors import safe_open
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .errors import InvalidArgumentError

MAX_WORKERS = 64
_MIX = 1_000_003  # mixes (seed, reader, epoch, shard) into one generator seed


def data_rank() -> tuple[int, int]:
    """(rank, world size): torch.distributed's when it is initialized, else the environment's
    RANK and WORLD_SIZE (as torchrun sets them), else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _seed(*parts: int) -> int:
    value = 0
    for part in parts:
        value = (value * _MIX + part) % 2**62
    return value


class ShardStream(IterableDataset):
    """Endless windows int [window,H,W] from ``shards`` ((path, clips) pairs), read by the reader
    of this process: rank ``rank`` of ``world``, worker of ``workers`` (0: no worker processes).
    Each reader skips the samples of the first ``first_batch`` batches of ``batch_size`` it made."""

    def __init__(self, shards: list[tuple[str, int]], window: int, seed: int, *, rank: int, world: int, workers: int,
                 first_batch: int = 0, batch_size: int = 1) -> None:
        super().__init__()
        self.shards, self.window, self.seed = shards, window, seed
        self.rank, self.world, self.workers = rank, world, workers
        self.first_batch, self.batch_size = first_batch, batch_size

    def reader(self) -> tuple[int, int]:
        """(this process's reader index, readers in all). The DataLoader takes its first batch from
        worker 0, so after ``first_batch`` batches worker w plays the part of worker
        (w + first_batch) mod workers of the stream that started at 0."""
        info = get_worker_info()
        per_rank = max(self.workers, 1)
        worker = ((info.id if info is not None else 0) + self.first_batch) % per_rank
        return self.rank * per_rank + worker, self.world * per_rank

    def mine(self, reader: int, readers: int) -> list[tuple[str, int]]:
        """The shards reader ``reader`` of ``readers`` reads."""
        return self.shards[reader::readers]

    def __iter__(self) -> Iterator[Tensor]:
        reader, readers = self.reader()
        worker = reader % max(self.workers, 1)
        mine = self.mine(reader, readers)
        per_epoch = sum(n for _, n in mine)
        skip = len(range(worker, self.first_batch, max(self.workers, 1))) * self.batch_size  # samples this reader already gave
        epoch, skip = divmod(skip, per_epoch)
        while True:
            order = torch.randperm(len(mine), generator=torch.Generator().manual_seed(_seed(self.seed, reader, epoch)))
            for position, index in enumerate(order.tolist()):
                path, n = mine[index]
                if skip >= n:
                    skip -= n
                    continue
                yield from self._windows(path, n, _seed(self.seed, reader, epoch, position + 1), skip)
                skip = 0
            epoch += 1

    def _windows(self, path: str, n: int, seed: int, skip: int) -> Iterator[Tensor]:
        """The windows of one shard's clips in a seeded order from the ``skip``-th on; the shard is
        read whole and let go when done."""
        with safe_open(path, framework="pt") as handle:
            tokens = handle.get_tensor("tokens")  # [N,T,H,W]
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=generator)
        starts = torch.randint(tokens.shape[1] - self.window + 1, (n,), generator=generator)
        for i in range(skip, n):
            start = int(starts[i])
            yield tokens[order[i], start : start + self.window]  # [W,H,W]


class ShardWindows:
    """Batches of windows int [B,window,H,W] streamed from token shards through a torch DataLoader
    with ``workers`` worker processes: what ``TransformerTask`` draws from instead of tokens in memory."""

    def __init__(self, shards: list[tuple[str, int]], window: int, batch_size: int, seed: int, workers: int = 2) -> None:
        if not 0 <= workers <= MAX_WORKERS:
            raise InvalidArgumentError("workers", workers, f"must be between 0 and {MAX_WORKERS}")
        self.shards, self.window, self.batch_size, self.seed, self.workers = shards, window, batch_size, seed, workers
        self.clips = sum(n for _, n in shards)
        self._batches: Iterator[Tensor] | None = None

    def start(self, step: int) -> None:
        """Begin the stream where a run that has made ``step`` steps stands. Every reader needs a
        shard of its own: with fewer shards than ranks × workers each rank runs fewer workers
        (shards // ranks); fewer shards than ranks is an error."""
        rank, world = data_rank()
        if len(self.shards) < world:
            raise InvalidArgumentError("data", f"{len(self.shards)} shards", f"fewer than the {world} ranks; write smaller shards "
                                       "('maskflow tokenize --shard-clips')")
        workers = min(self.workers, len(self.shards) // world)
        stream = ShardStream(self.shards, self.window, self.seed, rank=rank, world=world, workers=workers,
                             first_batch=step, batch_size=self.batch_size)
        loader = DataLoader(stream, batch_size=self.batch_size, num_workers=workers, persistent_workers=workers > 0)
        self._batches = iter(loader)

    def draw(self, generator: torch.Generator) -> Tensor:
        """The next batch [B,window,H,W] (``generator`` is not used: the stream has its own seeds)."""
        if self._batches is None:
            self.start(0)
        return next(self._batches)
