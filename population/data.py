"""Each member's own batches, stacked: member k's rows of every batch are the ones its single run
would train on at that step (its seed's order, its own augmentation draws)."""

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from datamodules.batches import BatchIndices, BatchTransform


class MemberSamplers:
    """The members' ``BatchIndices``, advanced together: Lightning calls ``set_epoch`` on a
    loader's ``sampler`` at each epoch start, and every member reshuffles from its own seed."""

    def __init__(self, samplers: Sequence[BatchIndices]) -> None:
        lengths = {len(s) for s in samplers}
        if len(lengths) != 1:
            raise ValueError(f"members disagree on the number of batches per epoch: {lengths}")
        self.samplers = list(samplers)

    def set_epoch(self, epoch: int) -> None:
        for sampler in self.samplers:
            sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.samplers[0])


class MemberBatches:
    """``(x, y)`` with ``x`` of shape ``(K * B, ...)``: member k's batch in rows ``k * B`` to
    ``(k + 1) * B - 1``, gathered from the resident tensors in one indexing operation.

    Why by hand: a single run's ``TensorBatchLoader`` serves one order; a population needs K
    orders at once, each exactly its single run's (``BatchIndices`` from the member's seed)."""

    batch_sampler = None

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        samplers: Sequence[BatchIndices],
        transform: BatchTransform | None = None,
    ) -> None:
        self.x = x
        self.y = y
        self.transform = transform
        self.sampler = MemberSamplers(samplers)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        samplers = self.sampler.samplers
        generators = [s.generator(stream=1 + s.rank) for s in samplers]
        for indices in zip(*samplers):
            idx = torch.cat(indices).to(self.x.device, non_blocking=True)
            xb = self.x[idx]
            if self.transform is not None:  # each member's rows with its own generator
                parts = xb.split([len(i) for i in indices])
                xb = torch.cat([self.transform(p, g) for p, g in zip(parts, generators)])
            yield xb, self.y[idx]
