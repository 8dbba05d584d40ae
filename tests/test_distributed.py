"""DDP on CPU (gloo, 2 processes) gives the statistics of one process on the same global batch,
identical initial weights on both ranks, and one run folder; bf16, torch.compile and the
DataLoader path behave."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from callbacks.watched import parse_stat_tag
from sweeps.sweep import scalar_curves
from tests.support import FAST_CLI, ROOT
from train import build

STATS = ("act_mean", "act_std", "act_rms", "act_zero_frac", "act_dead_frac", "act_grad_std")
STATS += ("act_grad_norm", "act_grad_max", "grad_norm", "weight_norm")


def _run(run_dir: Path, data_root: Path, *overrides: str, timeout: float = 600) -> None:
    command = [sys.executable, "train.py", *FAST_CLI, f"data.root={data_root}"]
    command += [f"hydra.run.dir={run_dir}", "model.depth=3", "model.width=64", "test=false"]
    command += ["trainer.log_every_n_steps=1", "trainer.limit_train_batches=1", *overrides]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> tuple[Path, Path]:
    """The same global batch of 16: one process, and two DDP ranks of 8 each."""
    root = tmp_path_factory.mktemp("ddp")
    single, ddp = root / "single", root / "ddp"
    _run(single, data_root, "data.batch_size=16")
    save = f"+callbacks.save._target_=tests.helpers.SaveInitialWeights +callbacks.save.folder={ddp}"
    _run(ddp, data_root, "trainer=ddp", "trainer.devices=2", "data.batch_size=8", *save.split())
    return single, ddp


@pytest.mark.slow
def test_ddp_step0_statistics_equal_the_single_process_ones(runs) -> None:
    single, ddp = (scalar_curves(run) for run in runs)
    compared = 0
    for tag, values in single.items():
        if (parse_stat_tag(tag) or ("",))[0] in STATS:
            assert ddp[tag][0] == pytest.approx(values[0], rel=1e-4, abs=1e-7), tag
            compared += 1
    assert compared > 30
    assert ddp["train/loss_step"][0] == pytest.approx(single["train/loss_step"][0], rel=1e-5)


@pytest.mark.slow
def test_ddp_ranks_start_from_the_same_weights(runs) -> None:
    ranks = [torch.load(runs[1] / f"weights_rank{r}.pt") for r in (0, 1)]
    for name, tensor in ranks[0].items():
        torch.testing.assert_close(tensor, ranks[1][name], rtol=0, atol=0, msg=name)


@pytest.mark.slow
def test_ddp_writes_one_run_folder_and_one_metrics_file(runs) -> None:
    ddp = runs[1]
    assert sorted(p.name for p in ddp.parent.iterdir()) == ["ddp", "single"]
    assert len(list(ddp.rglob("metrics.json"))) == 1
    assert len(list(ddp.glob("events.out.tfevents.*"))) >= 1
    assert not any(p.is_dir() and p.name.startswith("version_") for p in ddp.iterdir())


@pytest.mark.slow
def test_ddp_ranks_stop_together_when_one_rank_diverges(tmp_path: Path, data_root: Path) -> None:
    """Rank 1 alone gets a NaN layer before step 4, the last step before a check (3 steps an
    epoch; checks after steps 1, 2 (epoch end), 4): rank 0's losses are all finite there, yet
    both ranks stop at that check, and rank 0 records rank 1's step and layer."""
    run = tmp_path / "run"
    inject = "+callbacks.inject._target_=tests.helpers.BlowUpWeight +callbacks.inject.step=4"
    inject += " +callbacks.inject.param=net.layers.1.0.weight +callbacks.inject.factor=nan"
    inject += " +callbacks.inject.rank=1 callbacks.divergence_guard.every_n_steps=2"
    steps = ["trainer.limit_train_batches=3", "trainer.max_epochs=3", "data.batch_size=8"]
    _run(run, data_root, "trainer=ddp", "trainer.devices=2", *steps, *inject.split(), timeout=180)
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "diverged", record
    assert record["divergence"]["step"] == 4 and record["divergence"]["layer"] == "net.layers.1.0"
    assert record["steps"] == 5  # stopped at the check after step 4, not at the end (9 steps)


@pytest.mark.slow
def test_ddp_with_the_dataloader_path(tmp_path: Path, data_root: Path) -> None:
    """Lightning shards the DataLoader path with a DistributedSampler; validation still ends."""
    run = tmp_path / "run"
    loader = ["data.loader=dataloader", "data.num_workers=0"]
    _run(run, data_root, "trainer=ddp", "trainer.devices=2", *loader)
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "finished" and "val/loss" in record["metrics"]


def test_compile_with_statistics_is_refused_plainly(make_cfg) -> None:
    trainer, module, datamodule = build(make_cfg("compile=true"))
    with pytest.raises(ValueError, match="stats=off"):
        trainer.fit(module, datamodule=datamodule)
