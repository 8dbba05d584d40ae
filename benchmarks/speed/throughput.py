"""Samples/s of train.py's pipeline against a minimal hand-written PyTorch loop, side by side.

Both train the same model (same config, init, optimizer and batch size) on the same in-memory
tensors in this process. The pipeline is datamodule + Classifier + Lightning Trainer exactly as
train.py builds them (progress bar, logging, checkpointing, divergence guard included), once per
statistics mode (``stats=off|default|full``) and once with ``data.loader=dataloader`` (a
DataLoader with per-image transforms instead of batches sliced from resident tensors); a
"Lightning floor" column trains a bare LightningModule (forward, cross-entropy, optimizer,
nothing else) with ``Trainer(barebones=True)`` to show what Lightning's own loop costs per step.

Measured in pairs: during each Lightning epoch the raw loop runs ``--slice`` steps after every
``--slice`` Lightning steps, timed apart, so both see the same machine load; the Lightning time is
the epoch's minus the raw slices'. On a shared 2-core machine whose speed drifts by 10-30 %
within a minute, the ratio of a pair is stable to about 2 % where separate runs disagree by 20 %.
Each cell is the median over ``--repeats``.

    python -m benchmarks.speed.throughput --models mlp cnn
    python -m benchmarks.speed.throughput --models mlp -- data.batch_size=256 \\
        trainer.accelerator=gpu
"""

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch import Tensor, nn

import train
from benchmarks.harness.tables import markdown_table, write_outputs
from inits import apply_init

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
# column -> its overrides; the floor swaps in a bare module and Trainer (``paired_run``)
COLUMNS = {
    "Lightning floor": ["stats=off"],
    "stats=off": ["stats=off"],
    "stats=default": ["stats=default"],
    "stats=full": ["stats=full"],
    "DataLoader, stats=off": ["stats=off", "++data.loader=dataloader"],
}
COSTS = ("stats=default", "stats=full")  # against stats=off


def compose_run(overrides: list[str], output_dir: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    return cfg


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class RawLoop:
    """The plainest PyTorch loop over the training tensors: gather a batch, forward,
    cross-entropy, backward, step. Its own copy of the model, built and initialized from the
    same config, so it can run in slices beside a Lightning run."""

    def __init__(self, cfg: DictConfig, datamodule: L.LightningDataModule, device: torch.device):
        self.x, self.y = (t.to(device) for t in datamodule.splits["train"])
        self.batch, self.device = datamodule.batch_size, device
        self.net = instantiate(cfg.model)(datamodule.input_shape, datamodule.num_classes)
        apply_init(instantiate(cfg.init), self.net, self.x[: self.batch].cpu())
        self.net.to(device)
        self.optimizer = instantiate(cfg.optimizer)(self.net.parameters())
        self.order, self.position = torch.randperm(len(self.y), device=device), 0

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` training steps (reshuffling when the data runs out)."""
        _sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            if self.position + self.batch > len(self.y):
                self.order, self.position = torch.randperm(len(self.y), device=self.device), 0
            idx = self.order[self.position : self.position + self.batch]
            self.position += self.batch
            loss = F.cross_entropy(self.net(self.x[idx]), self.y[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        _sync(self.device)
        return time.perf_counter() - start


class PairedRawLoop(L.Callback):
    """Times one training epoch of the Lightning run it is attached to, with the raw loop run
    for ``every`` steps after every ``every`` Lightning steps and its time taken out."""

    def __init__(self, cfg: DictConfig, every: int) -> None:
        self.cfg, self.every = cfg, every
        self.raw_seconds = self.lightning_seconds = 0.0
        self.raw_samples = self.lightning_samples = 0

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.raw = RawLoop(self.cfg, trainer.datamodule, module.device)

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.every = min(self.every, trainer.num_training_batches)  # at least one slice
        _sync(module.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        self.lightning_samples += len(batch[1])
        if (batch_idx + 1) % self.every == 0:
            self.raw_seconds += self.raw.run(self.every)
            self.raw_samples += self.every * self.raw.batch

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        _sync(module.device)
        self.lightning_seconds = time.perf_counter() - self._start - self.raw_seconds

    def rates(self) -> tuple[float, float]:
        """Samples/s of the raw loop and of the Lightning run."""
        return (
            self.raw_samples / self.raw_seconds,
            self.lightning_samples / self.lightning_seconds,
        )


class BareClassifier(L.LightningModule):
    """Lightning's floor: the same network and optimizer, cross-entropy, no metrics or logs."""

    def __init__(self, net: nn.Module, cfg: DictConfig) -> None:
        super().__init__()
        self.net, self.cfg = net, cfg

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return instantiate(self.cfg.optimizer)(self.parameters())


def paired_run(cfg: DictConfig, column: str, every: int) -> tuple[float, float]:
    """(raw, Lightning) samples/s of one epoch of ``column``, measured as a pair."""
    paired = PairedRawLoop(cfg, every)
    trainer, module, datamodule = train.build(cfg)
    if column == "Lightning floor":
        limits = {
            k: cfg.trainer[k] for k in ("limit_train_batches", "accelerator") if k in cfg.trainer
        }
        trainer = L.Trainer(
            barebones=True,
            max_epochs=1,
            limit_val_batches=0,
            devices=1,
            callbacks=[paired],
            **limits,
        )
        module = BareClassifier(module.net, cfg)
    else:
        trainer.callbacks.append(paired)
    trainer.fit(module, datamodule=datamodule)
    return paired.rates()


def measure(model: str, overrides: list[str], repeats: int, every: int) -> dict[str, dict]:
    """Per column: median samples/s of the raw loop and of Lightning, and the median ratio."""
    base = [f"model={model}", "trainer.max_epochs=1", "++trainer.limit_val_batches=0", "test=false"]
    pairs: dict[str, list[tuple[float, float]]] = {column: [] for column in COLUMNS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):  # columns interleaved, so slow drift hits them alike
            for column, column_overrides in COLUMNS.items():
                cfg = compose_run([*base, *column_overrides, *overrides], tmp)
                pairs[column].append(paired_run(cfg, column, every))
    return {
        column: {
            "raw": statistics.median(raw for raw, _ in runs),
            "lightning": statistics.median(rate for _, rate in runs),
            "ratio": statistics.median(rate / raw for raw, rate in runs),
        }
        for column, runs in pairs.items()
    }


def table(models: list[str], overrides: list[str], repeats: int, every: int = 20) -> list[dict]:
    """One row per model: samples/s of the raw loop, then per column its samples/s with the
    ratio to the raw loop it was paired with, and what the statistics cost against stats=off."""
    rows = []
    for model in models:
        r = measure(model, overrides, repeats, every)
        raw = statistics.median(r[c]["raw"] for c in COLUMNS)
        row = {"model": model, "raw PyTorch loop": f"{raw:,.0f}"}
        row |= {c: f"{r[c]['lightning']:,.0f} ({r[c]['ratio']:.3f})" for c in COLUMNS}
        off = r["stats=off"]["ratio"]
        row |= {f"cost of {c}": f"{100 * (1 - r[c]['ratio'] / off):.1f} %" for c in COSTS}
        rows.append(row | {"_ratios": {c: r[c]["ratio"] for c in COLUMNS}})
    return rows


def run(out: Path, quick: bool = False, overrides: list[str] | None = None) -> dict:
    """The table for mlp and cnn (quick: mlp, 40 batches, one repeat) into ``out``."""
    models, repeats = (["mlp"], 1) if quick else (["mlp", "cnn"], 3)
    shrink = ["++trainer.limit_train_batches=40", "++trainer.enable_progress_bar=false"]
    extra = [*(shrink if quick else []), *(overrides or [])]
    tables = {"throughput": table(models, extra, repeats, every=10 if quick else 20)}
    notes = "samples/s of one training epoch; in brackets: relative to the raw loop run beside it."
    write_outputs(out, tables, "Pipeline throughput", [], notes)
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slice", type=int, default=20, help="raw steps per slice")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, after --")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    print(markdown_table(table(args.models, args.overrides, args.repeats, args.slice)))


if __name__ == "__main__":
    main()
