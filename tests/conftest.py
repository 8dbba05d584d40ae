"""Shared fixtures: tiny datasets in the real file formats, and the real config, shrunk."""

import copy
import hashlib
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from torchvision import datasets

from runs.lifecycle import start_record
from train import CONFIG_DIR, compose

CONF_DIR = CONFIG_DIR
N_TRAIN, N_TEST = 64, 32

FAST = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=2",
    "++trainer.limit_val_batches=1",
    "++trainer.limit_test_batches=1",
    "++trainer.enable_progress_bar=false",
    "++trainer.enable_model_summary=false",
    "trainer.accelerator=cpu",
    "data.batch_size=8",
    "data.val_size=16",
    "data.eval_batch_size=16",
]
# The same settings on a command line: '+' adds a key where '++' (add or override) is not needed.
FAST_CLI = [o.replace("++", "+", 1) if o.startswith("++") else o for o in FAST]


def _images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images whose labels can be learned: the class sets the mean brightness."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    base = rng.integers(0, 100, (n, *shape))
    return (base + labels.reshape(-1, *[1] * len(shape)) * 15).astype(np.uint8), labels


def write_idx(folder: Path, seed: int = 0) -> None:
    """MNIST's IDX files (big-endian magic 2051/2049, then the dims, then raw bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images, labels = _images(n, (28, 28), seed + n)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
        )
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes()
        )


def write_cifar(root: Path, cls: type, label_key: str, seed: int = 0) -> None:
    """CIFAR's pickled batches: {'data': N x 3072 uint8 (CHW order), label_key: [...]}."""
    folder = root / cls.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    names = [name for name, _ in cls.train_list] + [name for name, _ in cls.test_list]
    for i, name in enumerate(names):
        n = N_TEST if name in ("test", "test_batch") else N_TRAIN // len(cls.train_list)
        images, labels = _images(n, (3, 32, 32), seed + i)
        entry = {"data": images.reshape(n, -1), label_key: labels.tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
    names_key = cls.meta["key"]
    (folder / cls.meta["filename"]).write_bytes(
        pickle.dumps({names_key: [str(i) for i in range(10)]})
    )


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
def make_cfg(data_root: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose the real config with the given overrides (``train.compose``, as a notebook
    would), shrunk to a few steps on tiny data, writing into ``tmp_path / "run"``."""

    def make(*overrides: str, fast: bool = True, output_dir: Path | None = None) -> DictConfig:
        extra = FAST if fast else []
        return compose(
            f"data.root={data_root}", *extra, *overrides, output_dir=output_dir or tmp_path / "run"
        )

    yield make
    GlobalHydra.instance().clear()


def member_runs(
    make_cfg: Callable[..., DictConfig], folder: Path, common: list[str], variants: list[list[str]]
) -> list[tuple[DictConfig, dict]]:
    """(config, starting record) per member ``folder/member<i>``, as the population launcher
    prepares them: the config without its ``hydra`` node, resolved while the member's own Hydra
    config is current (``stats.title`` is its init)."""
    runs = []
    for i, variant in enumerate(variants):
        cfg = copy.deepcopy(make_cfg(*common, *variant, output_dir=folder / f"member{i}"))
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
        OmegaConf.resolve(cfg)
        runs.append((cfg, start_record(cfg)))
    return runs


@pytest.fixture(autouse=True)
def _fresh_rng() -> None:
    torch.manual_seed(0)
