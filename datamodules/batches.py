"""Batches served straight from in-memory tensors.

Why by hand: a DataLoader fetches and collates sample by sample; slicing whole batches out of a
tensor that already lives on the training device does one gather per batch instead, which is what
keeps Lightning's pipeline within a few percent of a raw PyTorch loop
(benchmarks/speed/throughput.py).
"""

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

BatchTransform = Callable[[Tensor, torch.Generator], Tensor]


class BatchIndices:
    """Index batches over ``n`` samples, reshuffled per epoch from ``(seed, epoch)``.

    Follows the ``DistributedSampler`` contract: Lightning calls ``set_epoch`` at each epoch
    start, so a resumed run sees the same order as an uninterrupted one, and each of
    ``world_size`` ranks takes every ``world_size``-th sample of the shared permutation.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.n = n
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def generator(self, stream: int = 0) -> torch.Generator:
        """A CPU generator for this (seed, epoch): stream 0 draws the permutation all ranks
        share, stream 1 + rank that rank's own augmentation."""
        return torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_009 + stream)

    def _per_rank(self) -> int:
        return self.n // self.world_size if self.world_size > 1 else self.n

    def __len__(self) -> int:
        per_rank = self._per_rank()
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        order = torch.randperm(self.n, generator=self.generator()) if self.shuffle else None
        if order is None:
            order = torch.arange(self.n)
        if self.world_size > 1:
            order = order[: self._per_rank() * self.world_size][self.rank :: self.world_size]
        yield from order.split(self.batch_size)[: len(self)]


class TensorBatchLoader:
    """Iterable of ``(x, y)`` batches gathered from resident tensors, with an optional
    whole-batch transform (augmentation) drawn from the sampler's generator.

    It exposes ``sampler`` (and ``batch_sampler = None``) like a DataLoader, so Lightning finds
    ``set_epoch`` and its loader checks pass."""

    batch_sampler = None

    def __init__(
        self, x: Tensor, y: Tensor, sampler: BatchIndices, transform: BatchTransform | None = None
    ) -> None:
        self.x = x
        self.y = y
        self.sampler = sampler
        self.transform = transform

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        generator = self.sampler.generator(stream=1 + self.sampler.rank)
        for idx in self.sampler:
            idx = idx.to(self.x.device, non_blocking=True)
            xb = self.x[idx]
            if self.transform is not None:
                xb = self.transform(xb, generator)
            yield xb, self.y[idx]
