"""What many test files share: the checkout's paths, the real config's shrinking overrides, tiny
datasets in the real file formats, population members, the models every init is tried on, and
the reference gains. Fixtures live in ``conftest.py``; code a config names by ``_target_``
lives in ``helpers.py``."""

import copy
import math
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from scipy import integrate
from torch import nn

from inits import weight_targets
from models import CNN, MLP, GRUClassifier, LSTMClassifier, ResNet, RNNClassifier
from runs.lifecycle import start_record
from train import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = CONFIG_DIR
README = (ROOT / "README.md").read_text()
# Any attempt to reach the network fails at once (nothing listens on port 9 of loopback).
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}

N_TRAIN, N_TEST = 64, 32
# Small models for population tests: a member of each trains in a fraction of a second.
SMALL_MODELS = {
    "mlp": ["model=mlp", "model.depth=2", "model.width=16"],
    "mlp_layernorm_tanh": [
        "model=mlp",
        "model.depth=2",
        "model.width=16",
        "model.norm=layernorm",
        "model.activation=tanh",
    ],
    "mlp_batchnorm": ["model=mlp", "model.depth=2", "model.width=16", "model.norm=batchnorm"],
    "mlp_mup": ["model=mlp", "model.depth=2", "model.width=16", "parametrization=mup"],
    "cnn": ["model=cnn", "model.channels=[4,8]", "model.hidden=16"],
    "cnn_layernorm": [
        "model=cnn",
        "model.channels=[4,8]",
        "model.hidden=16",
        "model.norm=layernorm",
    ],
    # LSUV sees the member's first batch, augmented as its single run's
    "cnn_cifar_augment_lsuv": [
        "data=cifar10",
        "data.augment=true",
        "model=cnn",
        "model.channels=[4,8]",
        "model.hidden=16",
    ],
    "resnet_batchnorm": ["model=resnet", "model.depth=8", "model.width=4"],
    "resnet_layernorm": ["model=resnet", "model.depth=8", "model.width=4", "model.norm=layernorm"],
    "resnet_fixup": ["model=resnet", "model.depth=8", "model.width=4", "model.norm=none"],
}

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


def all_models() -> list[nn.Module]:
    """One model of each layer type an init must handle: linear, conv, recurrent (stacked,
    with LayerNorm, ReLU RNN), residual."""
    return [
        MLP((1, 28, 28), 10),
        CNN((3, 32, 32), 10),
        LSTMClassifier((1, 28, 28), 10, num_layers=2),
        LSTMClassifier((1, 28, 28), 10, norm="layernorm"),
        RNNClassifier((1, 28, 28), 10, num_layers=2, activation="relu"),
        RNNClassifier((1, 28, 28), 10, norm="layernorm"),
        GRUClassifier((1, 28, 28), 10, num_layers=2),
        ResNet((1, 28, 28), 10, depth=8, norm="none"),
    ]


def matrices(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every weight an init writes, as a matrix with one row per output unit (or gate row)."""
    return [(t.name, t.tensor.reshape(t.tensor.shape[0], -1)) for t in weight_targets(model)]


def second_moment_gain(f: Callable[[float], float]) -> float:
    """1 / sqrt(E[f(z)^2]) for z ~ N(0, 1), by quadrature: the gain that keeps unit
    pre-activation variance through ``f`` (He et al. 2015, eq. 7: sqrt(2) for ReLU)."""

    def density(z: float) -> float:
        return f(z) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    second_moment = integrate.quad(density, -math.inf, math.inf, epsabs=1e-12)[0]
    return 1 / math.sqrt(second_moment)


def gelu(z: float) -> float:
    """GELU, exactly: z * Phi(z) (Hendrycks & Gimpel 2016)."""
    return z * 0.5 * (1 + math.erf(z / math.sqrt(2)))


def softsign(z: float) -> float:
    """Softsign: z / (1 + |z|) (Glorot & Bengio 2010)."""
    return z / (1 + abs(z))


def reference_gain(activation: str, param: float | None = None) -> float:
    """The gain an init should derive for ``activation``: ``torch.nn.init.calculate_gain``,
    or, for the activations it does not know (GELU, softsign), the second-moment formula."""
    if activation in ("gelu", "softsign"):
        return second_moment_gain({"gelu": gelu, "softsign": softsign}[activation])
    return nn.init.calculate_gain(activation, param)
