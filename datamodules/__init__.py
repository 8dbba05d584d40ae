"""LightningDataModules for the datasets in `conf/data/`."""

from datamodules.datasets import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)
from datamodules.vision import DATA_ENV, DataNotFoundError, VisionDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DATA_ENV",
    "DataNotFoundError",
    "FashionMNISTDataModule",
    "MNISTDataModule",
    "VisionDataModule",
]
