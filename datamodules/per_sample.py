"""The textbook input pipeline: a DataLoader over the torchvision dataset, transformed image by
image. Not the default: batches sliced from resident tensors train the MLP 3 times faster on
CPU (``benchmarks/speed/throughput.py``). Kept as the baseline that path is measured against and for
transforms that only exist per image."""

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from torchvision.datasets import VisionDataset


def per_sample_loader(
    dataset: VisionDataset,
    indices: Tensor | None,
    mean: Tensor,
    std: Tensor,
    image_size: tuple[int, int],
    *,
    batch_size: int,
    train: bool,
    augment: bool,
    num_workers: int,
    seed: int,
    pin_memory: bool = False,
) -> DataLoader:
    """Batches of ``dataset`` (restricted to ``indices``), normalized with the same per-channel
    statistics as the resident path and, for training with ``augment``, cropped from a 4-pixel
    zero padding (the mean colour after normalization) and flipped, as that path does.

    Training batches are shuffled from a generator seeded with ``seed`` (a new order each
    epoch) and the last partial batch is dropped; under DDP Lightning swaps in a
    ``DistributedSampler``.
    """
    steps = [transforms.ToTensor(), transforms.Normalize(mean.tolist(), std.tolist())]
    if train and augment:
        crop = transforms.RandomCrop(image_size, padding=4)
        steps += [crop, transforms.RandomHorizontalFlip()]
    dataset.transform = transforms.Compose(steps)
    data = dataset if indices is None else Subset(dataset, indices.tolist())
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=train,
        drop_last=train,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed) if train else None,
    )
