"""One LightningDataModule for the torchvision image-classification datasets.

The dataset is read once through torchvision's own class, kept as a normalized float tensor
(moved to the training device when it trains there) and served as whole batches; with
``data.loader=dataloader`` a DataLoader with per-image transforms serves it instead.
"""

import logging
import os
from pathlib import Path
from typing import ClassVar

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torchvision.datasets import VisionDataset

from datamodules.augment import random_crop_flip
from datamodules.batches import BatchIndices, TensorBatchLoader
from datamodules.per_sample import per_sample_loader

log = logging.getLogger(__name__)

DATA_ENV = "INITBENCH_DATA"
LOADERS = ("tensors", "dataloader")


class DataNotFoundError(FileNotFoundError):
    """The dataset's files are missing, corrupt, or could not be downloaded."""


class VisionDataModule(L.LightningDataModule):
    """Train/val/test splits of a torchvision dataset as resident tensors.

    Args:
        root: folder holding the dataset in torchvision's layout.
        batch_size: training batch size per device.
        eval_batch_size: batch size for validation and test.
        val_size: samples of the official training set held out for validation.
        split_seed: seed of the train/val split; fixed so every run validates on the same images.
        seed: seed of the per-epoch shuffling and augmentation.
        augment: random crop with padding and horizontal flip on training batches.
        download: let torchvision download missing files.
        on_device: keep the tensors on the training device (GPU-resident data path).
        loader: ``tensors`` (batches sliced from the resident tensors) or ``dataloader`` (a
            torch DataLoader with per-image torchvision transforms, `per_sample.py`).
        num_workers: worker processes of the ``dataloader`` path.
    """

    dataset_cls: ClassVar[type[VisionDataset]]
    input_shape: ClassVar[tuple[int, int, int]]
    num_classes: ClassVar[int]
    no_augment_reason: ClassVar[str | None] = None  # why ``augment`` is refused, if it is

    def __init__(
        self,
        root: str,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        split_seed: int = 0,
        seed: int = 0,
        augment: bool = False,
        download: bool = False,
        on_device: bool = True,
        loader: str = "tensors",
        num_workers: int = 2,
    ) -> None:
        super().__init__()
        if loader not in LOADERS:
            raise ValueError(f"data.loader must be one of {', '.join(LOADERS)}, got '{loader}'")
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value <= 0:
                raise ValueError(f"data.{name} must be positive, got {value}")
        if val_size < 0:
            raise ValueError(f"data.val_size must be >= 0, got {val_size}")
        if augment and self.no_augment_reason:
            raise ValueError(f"data.augment=true: {self.no_augment_reason}; use data.augment=false")
        self.root = Path(os.path.expanduser(root))
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.seed = seed
        self.augment = augment
        self.download = download
        self.on_device = on_device
        self.loader = loader
        self.num_workers = num_workers
        self.split_indices: dict[str, Tensor] = {}  # train/val: rows of the official train set
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    @classmethod
    def expected_files(cls, root: Path) -> list[Path]:
        """The files torchvision reads for this dataset, for error messages."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Download once per node when allowed (Lightning calls this on one process only)."""
        if self.download:
            for train in (True, False):
                self._open(train)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y = self._load(train=True)
        self.mean = x.mean(dim=(0, 2, 3))
        self.std = x.std(dim=(0, 2, 3))
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
        if self.val_size >= len(x):
            raise ValueError(f"data.val_size={self.val_size} leaves no training data ({len(x)})")
        val, train = order[: self.val_size], order[self.val_size :]
        self.split_indices = {"train": train, "val": val}
        test_x, test_y = self._load(train=False)
        self.splits = {
            "train": (self._normalize(x[train]), y[train]),
            "val": (self._normalize(x[val]), y[val]),
            "test": (self._normalize(test_x), test_y),
        }
        log.info("%s: %s", type(self).__name__, {k: len(v[1]) for k, v in self.splits.items()})

    def _normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean[:, None, None]) / self.std[:, None, None]

    def _open(self, train: bool) -> VisionDataset:
        try:
            return self.dataset_cls(str(self.root), train=train, download=self.download)
        except Exception as error:  # torchvision raises many types; all mean "no usable files"
            raise self._not_found(error) from error

    def _load(self, train: bool) -> tuple[Tensor, Tensor]:
        """Read one official split as float images in [0, 1], shape (N, C, H, W)."""
        dataset = self._open(train)
        x = torch.as_tensor(dataset.data)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        y = torch.as_tensor(dataset.targets, dtype=torch.long)
        if tuple(x.shape[1:]) != self.input_shape or len(x) != len(y) or len(x) == 0:
            raise self._not_found(
                ValueError(f"read images of shape {tuple(x.shape)} and {len(y)} labels")
            )
        return x.float().div_(255), y

    def _not_found(self, error: Exception) -> DataNotFoundError:
        """The first line says what happened (files missing, unreadable, or a download that
        failed); the rest lists the files torchvision reads and how to point at them."""
        name = self.dataset_cls.__name__
        expected = self.expected_files(self.root)
        missing = [p for p in expected if not p.exists()]
        cause = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if self.download and missing:
            first = (
                f"{name} could not be downloaded into '{self.root}': the network could not be "
                f"reached or refused the download ({cause})"
            )
            remedy = f"Copy the files there, or point {DATA_ENV} or data.root=PATH at them."
        else:
            what = f"{len(missing)} of {len(expected)} files missing" if missing else cause
            first = f"{name}: no usable dataset under '{self.root}' ({what})"
            remedy = (
                f"Point the data root at them with the environment variable {DATA_ENV} or "
                f"data.root=PATH, or let torchvision fetch them with data.download=true."
            )
        files = "\n".join(f"  {p}{'' if p.exists() else '  (missing)'}" for p in expected)
        return DataNotFoundError(
            f"{first}.\nExpected these files (torchvision's layout):\n{files}\n{remedy}"
        )

    def _device(self) -> torch.device:
        trainer = self.trainer
        return trainer.strategy.root_device if self.on_device and trainer else torch.device("cpu")

    def _loader(self, split: str, train: bool) -> TensorBatchLoader | DataLoader:
        if not self.splits:
            self.setup()
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if train and trainer else (0, 1)
        batch_size = self.batch_size if train else self.eval_batch_size
        samples = len(self.splits[split][1])
        if train and samples // world < batch_size:
            raise ValueError(
                f"data.batch_size={self.batch_size} x {world} device(s) is more than the "
                f"{samples} training samples: no full batch to train on"
            )
        if self.loader == "dataloader":
            return per_sample_loader(
                self._open(train=split != "test"),
                self.split_indices.get(split),
                self.mean,
                self.std,
                self.input_shape[1:],
                batch_size=batch_size,
                train=train,
                augment=self.augment,
                num_workers=self.num_workers,
                seed=self.seed,
                pin_memory=trainer is not None and trainer.strategy.root_device.type == "cuda",
            )
        x, y = (t.to(self._device()) for t in self.splits[split])
        sampler = BatchIndices(
            samples,
            batch_size,
            shuffle=train,
            seed=self.seed,
            drop_last=train,
            rank=rank,
            world_size=world,
        )
        transform = random_crop_flip if train and self.augment else None
        return TensorBatchLoader(x, y, sampler, transform)

    def train_dataloader(self) -> TensorBatchLoader | DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> TensorBatchLoader | DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> TensorBatchLoader | DataLoader:
        return self._loader("test", train=False)
