"""Samples/s of train.py's pipeline against a minimal hand-written PyTorch loop, side by side.

Both train the same model (same config, init and batch size) on the same in-memory tensors for one
epoch in this process; the pipeline is datamodule + Classifier + Lightning Trainer exactly as
train.py builds them (progress bar, logging, checkpointing, divergence guard included), once per
statistics mode (``stats=off|default|full``). Each is timed over the training epoch only, best
of ``--repeats``, the runs of one repeat interleaved so drift hits all columns alike.

    python -m benchmarks.throughput --models mlp cnn
    python -m benchmarks.throughput --models mlp -- data.batch_size=256 trainer.accelerator=gpu
"""

import argparse
import logging
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

import train
from benchmarks.tables import markdown_table, write_outputs

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


class EpochTimer(L.Callback):
    """Wall time of each training epoch, validation excluded."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def compose_run(overrides: list[str], output_dir: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    return cfg


def time_pipeline(cfg: DictConfig) -> tuple[float, int]:
    """Seconds of one training epoch through train.py's objects, and samples seen."""
    trainer, module, datamodule = train.build(cfg)
    timer = EpochTimer()
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=datamodule)
    samples = trainer.num_training_batches * datamodule.batch_size
    return timer.seconds[-1], samples


def time_raw_loop(cfg: DictConfig) -> tuple[float, int]:
    """Seconds of one epoch of the plainest PyTorch loop over the same tensors."""
    L.seed_everything(cfg.seed)
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    device = torch.device(
        "cuda" if torch.cuda.is_available() and cfg.trainer.accelerator != "cpu" else "cpu"
    )
    x, y = (t.to(device) for t in datamodule.splits["train"])
    net = instantiate(cfg.model)(datamodule.input_shape, datamodule.num_classes)
    instantiate(cfg.init)(net, x[: datamodule.batch_size])
    net.to(device)
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    batch, steps = datamodule.batch_size, len(y) // datamodule.batch_size
    order = torch.randperm(len(y), device=device)
    start = time.perf_counter()
    for i in range(steps):
        idx = order[i * batch : (i + 1) * batch]
        loss = F.cross_entropy(net(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, steps * batch


STATS = ("off", "default", "full")


def measure(model: str, overrides: list[str], repeats: int) -> dict[str, float]:
    """Best samples/s of the raw loop and of the pipeline under each statistics mode."""
    runs: dict[str, list[float]] = {name: [] for name in ("raw", *STATS)}
    base = [f"model={model}", "trainer.max_epochs=1", "++trainer.limit_val_batches=0", "test=false"]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            seconds, samples = time_raw_loop(compose_run([*base, *overrides], tmp))
            runs["raw"].append(samples / seconds)
            for stats in STATS:
                cfg = compose_run([*base, f"stats={stats}", *overrides], tmp)
                seconds, samples = time_pipeline(cfg)
                runs[stats].append(samples / seconds)
    return {name: max(values) for name, values in runs.items()}


def table(models: list[str], overrides: list[str], repeats: int) -> list[dict]:
    """One row per model: samples/s (and the ratio to the raw loop) per column, and what the
    statistics cost against stats=off."""
    rows = []
    for model in models:
        r = measure(model, overrides, repeats)
        row = {"model": model, "raw PyTorch loop": f"{r['raw']:,.0f}"}
        row |= {f"stats={s}": f"{r[s]:,.0f} ({r[s] / r['raw']:.3f})" for s in STATS}
        row |= {f"cost of {s}": f"{100 * (1 - r[s] / r['off']):.1f} %" for s in STATS[1:]}
        rows.append(row | {"_samples_per_s": r})
    return rows


def run(out: Path, quick: bool = False, overrides: list[str] | None = None) -> dict:
    """The table for mlp and cnn (quick: mlp, 50 batches, one repeat) into ``out``."""
    models, repeats = (["mlp"], 1) if quick else (["mlp", "cnn"], 2)
    shrink = ["++trainer.limit_train_batches=50", "++trainer.enable_progress_bar=false"]
    extra = [*(shrink if quick else []), *(overrides or [])]
    tables = {"throughput": table(models, extra, repeats)}
    notes = "samples/s of one training epoch; in brackets: relative to the raw loop."
    write_outputs(out, tables, "Pipeline throughput", [], notes)
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, after --")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    print(markdown_table(table(args.models, args.overrides, args.repeats)))


if __name__ == "__main__":
    main()
