"""Shared fixtures: tiny datasets in the real file formats, and the real config, shrunk (the
constants and functions behind them are in ``tests/support.py``)."""

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from torchvision import datasets

from tests.support import FAST, write_cifar, write_idx
from train import compose


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_idx(root / "MNIST" / "raw")
    write_idx(root / "FashionMNIST" / "raw", seed=1)
    write_cifar(root, datasets.CIFAR10, "labels")
    write_cifar(root, datasets.CIFAR100, "fine_labels")
    return root


@pytest.fixture(autouse=True)
def tiny_cifar_checksums(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision checks CIFAR files against the official md5 sums; point them at ours."""
    for cls in (datasets.CIFAR10, datasets.CIFAR100):
        folder = data_root / cls.base_folder
        for attr in ("train_list", "test_list"):
            entries = [[name, _md5(folder / name)] for name, _ in getattr(cls, attr)]
            monkeypatch.setattr(cls, attr, entries)
        meta = dict(cls.meta, md5=_md5(folder / cls.meta["filename"]))
        monkeypatch.setattr(cls, "meta", meta)


@pytest.fixture
def make_cfg(data_root: Path, tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose the real config with the given overrides (``train.compose``, as a notebook
    would), shrunk to a few steps on tiny data, writing into ``tmp_path / "run"``."""

    def make(*overrides: str, fast: bool = True, output_dir: Path | None = None) -> DictConfig:
        extra = FAST if fast else []
        return compose(
            f"data.root={data_root}", *extra, *overrides, output_dir=output_dir or tmp_path / "run"
        )

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture(autouse=True)
def _fresh_rng() -> None:
    torch.manual_seed(0)
