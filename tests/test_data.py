"""Datamodules read the real file formats through torchvision and serve correct batches."""

from pathlib import Path

import pytest
import torch

from datamodules import CIFAR10DataModule, DataNotFoundError, MNISTDataModule
from datamodules.augment import random_crop_flip
from datamodules.batches import BatchIndices
from tests.support import N_TEST, N_TRAIN, write_idx
from train import train


def test_split_is_fixed_and_normalized(data_root: Path) -> None:
    a = MNISTDataModule(str(data_root), val_size=16, seed=1)
    b = MNISTDataModule(str(data_root), val_size=16, seed=2)
    a.setup()
    b.setup()
    assert {k: len(v[1]) for k, v in a.splits.items()} == {
        "train": N_TRAIN - 16,
        "val": 16,
        "test": N_TEST,
    }
    assert torch.equal(a.splits["val"][0], b.splits["val"][0])  # the run seed does not move it
    everything = torch.cat([a.splits["train"][0], a.splits["val"][0]])
    assert everything.mean().abs() < 1e-5 and (everything.std() - 1).abs() < 1e-2


def test_cifar_is_read_channel_first_with_per_channel_stats(data_root: Path) -> None:
    dm = CIFAR10DataModule(str(data_root), val_size=8)
    dm.setup()
    x, y = dm.splits["train"]
    assert x.shape[1:] == (3, 32, 32) and y.dtype == torch.long
    assert dm.mean.shape == (3,) and dm.std.shape == (3,)


def test_shuffling_is_seeded_per_epoch_and_resumable() -> None:
    sampler = BatchIndices(100, 10, shuffle=True, seed=3)
    epoch0 = torch.cat(list(sampler))
    sampler.set_epoch(1)
    epoch1 = torch.cat(list(sampler))
    fresh = BatchIndices(100, 10, shuffle=True, seed=3)
    fresh.set_epoch(1)
    assert not torch.equal(epoch0, epoch1)
    assert torch.equal(epoch1, torch.cat(list(fresh)))
    assert sorted(epoch0.tolist()) == list(range(100))


def test_ranks_share_one_permutation_without_overlap() -> None:
    shards = [
        torch.cat(list(BatchIndices(103, 8, True, seed=0, rank=r, world_size=4))) for r in range(4)
    ]
    seen = torch.cat(shards)
    assert all(len(s) == 103 // 4 for s in shards)
    assert len(set(seen.tolist())) == len(seen)


@pytest.mark.parametrize(("drop_last", "batches"), [(True, 3), (False, 4)])
def test_batch_count(drop_last: bool, batches: int) -> None:
    sampler = BatchIndices(30, 8, shuffle=False, drop_last=drop_last)
    assert len(sampler) == len(list(sampler)) == batches


def test_crop_flip_moves_whole_images() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float).reshape(2, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert out.shape == x.shape
    for image, original in zip(out, x):
        # every output is a shifted (and maybe mirrored) window of the zero-padded original
        padded = torch.nn.functional.pad(original, (2,) * 4)
        windows = [
            padded[:, i : i + 8, j : j + 8].flip(-1) if flip else padded[:, i : i + 8, j : j + 8]
            for i in range(5)
            for j in range(5)
            for flip in (False, True)
        ]
        assert any(torch.equal(image, w) for w in windows)


def test_corrupt_file_is_reported(tmp_path: Path) -> None:
    write_idx(tmp_path / "MNIST" / "raw")
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])  # truncated
    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte"):
        MNISTDataModule(str(tmp_path)).setup()


def test_batch_larger_than_the_training_split_fails_plainly(make_cfg) -> None:
    with pytest.raises(
        ValueError, match="data.batch_size=4096 x 1 device\\(s\\) is more than the 48"
    ):
        train(make_cfg("data.batch_size=4096"))


def test_dataloader_path_serves_the_same_normalized_split(data_root: Path) -> None:
    settings = {"val_size": 16, "batch_size": 8, "eval_batch_size": 8}
    resident = MNISTDataModule(str(data_root), **settings)
    per_sample = MNISTDataModule(str(data_root), **settings, loader="dataloader", num_workers=0)
    for a, b in zip(resident.val_dataloader(), per_sample.val_dataloader(), strict=True):
        assert torch.allclose(a[0], b[0], atol=1e-5) and torch.equal(a[1], b[1])
    epoch = list(per_sample.train_dataloader())  # every training image once, shuffled
    x = torch.cat([xb for xb, _ in epoch])
    assert len(epoch) == (N_TRAIN - 16) // 8 and x.shape[1:] == (1, 28, 28)
    expected = resident.splits["train"][0]
    assert torch.allclose(x.sum(dim=0), expected.sum(dim=0), atol=1e-3)


@pytest.mark.parametrize("data", ["mnist", "cifar10"])
def test_dataloader_path_trains(make_cfg, data: str) -> None:
    record = train(make_cfg(f"data={data}", "data.loader=dataloader", "data.num_workers=1"))
    assert record.status == "finished"


def test_unknown_loader_names_the_choices(data_root: Path) -> None:
    with pytest.raises(ValueError, match="data.loader must be one of tensors, dataloader"):
        MNISTDataModule(str(data_root), loader="dataloaders")
