"""``hydra/launcher=population``: which jobs share a population and why the others run alone
(on composed configs), and each member set up exactly as Hydra's basic launcher sets up a job."""

import csv
import json
import logging
import os
import re
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobStatus
from omegaconf import DictConfig, OmegaConf

from benchmarks.speed.sweep_speed import launchers
from population.groups import ALONE, Batch, plan
from runs.lifecycle import start_record
from runs.record import RunRecord
from tests.support import CONF_DIR, FAST_CLI, ROOT

Make = Callable[..., DictConfig]


def _plan(make_cfg: Make, jobs: list[str], max_members: int = 32, *common: str) -> list[Batch]:
    """The plan for jobs given as space-separated overrides, each with its own folder."""
    configs = [make_cfg(*common, *job.split(), output_dir=f"job{i}") for i, job in enumerate(jobs)]
    return plan(configs, max_members)


def test_jobs_differing_only_in_member_keys_share_a_population(make_cfg: Make) -> None:
    jobs = [
        "init=xavier_normal seed=0",
        "init=kaiming_normal seed=1 data.seed=5",
        "init=orthogonal init.gain=2 optimizer=adam optimizer.lr=0.001",
        "init=lsuv optimizer.weight_decay=0 optimizer.momentum=0.5 scheduler=constant",
        "init=xavier_normal scheduler.warmup=0.1 optimizer.lr=0.1",
    ]
    assert _plan(make_cfg, jobs) == [Batch((0, 1, 2, 3, 4))]


def test_other_differences_split_populations_in_job_order(make_cfg: Make) -> None:
    jobs = ["model.width=16 seed=0", "model.width=32 seed=0"]
    jobs += ["model.width=16 seed=1", "model.width=32 seed=1", "data.batch_size=4 seed=0"]
    jobs += ["callbacks.divergence_guard.max_loss=10"]  # a key nobody listed splits too
    assert _plan(make_cfg, jobs) == [
        Batch((0, 2)),
        Batch((1, 3)),
        Batch((4,), ALONE),
        Batch((5,), ALONE),
    ]


UNSUPPORTED = {
    "compile=true": "compile=true",
    "trainer.precision=16-mixed": "trainer.precision=16-mixed (its loss scale is shared)",
    "trainer.precision=bf16-true": "trainer.precision=bf16-true",
    "trainer=ddp": "trainer.devices=2 / strategy ddp",
    "trainer.devices=3": "trainer.devices=3 / strategy auto",
    "data.loader=dataloader": "data.loader=dataloader",
    "ckpt_path=last.ckpt": "ckpt_path set",
    "resume=true": "resume=true",
    "hydra.job.chdir=true": "hydra.job.chdir=true",
    "model=lstm": "model=lstm: ",
    "model=mlp model.depth=0": "model=mlp: it does not build (ValueError: model.depth",
    "+callbacks.stop._target_=tests.helpers.StopAfterFirstEpoch": "callbacks.stop (a population",
    "callbacks.lr_monitor.logging_interval=epoch": "callbacks.lr_monitor.logging_interval=epoch",
}
NOT_A_CHECKPOINT = "callbacks.model_checkpoint._target_=tests.helpers.StopAfterFirstEpoch"
UNSUPPORTED[NOT_A_CHECKPOINT] = NOT_A_CHECKPOINT


@pytest.mark.parametrize(("setting", "reason"), UNSUPPORTED.items(), ids=list(UNSUPPORTED))
def test_unsupported_settings_run_alone_saying_why(make_cfg: Make, setting: str, reason: str):
    (first, second) = _plan(make_cfg, [f"{setting} seed=0", f"{setting} seed=1"])
    assert first.jobs == (0,) and second.jobs == (1,)
    assert first.reason.startswith(reason) and first.reason == second.reason


def test_supported_settings_share_a_population(make_cfg: Make) -> None:
    for setting in (
        "model=cnn",
        "model=resnet",
        "trainer.precision=bf16-mixed",
        "stats=off",
        "callbacks.model_checkpoint.monitor=val/loss",
    ):
        assert _plan(make_cfg, [f"{setting} seed=0", f"{setting} seed=1"]) == [Batch((0, 1))]


def test_max_members_splits_a_group_evenly(make_cfg: Make) -> None:
    seeds = [f"seed={s}" for s in range(7)]
    assert _plan(make_cfg, seeds[:6], 4) == [Batch((0, 1, 2)), Batch((3, 4, 5))]
    assert _plan(make_cfg, seeds, 3) == [Batch((0, 1, 2)), Batch((3, 4)), Batch((5, 6))]
    one = _plan(make_cfg, seeds[:2], 1)
    assert one == [Batch((i,), "alone: hydra.launcher.max_members=1") for i in (0, 1)]
    with pytest.raises(ValueError, match="hydra.launcher.max_members must be >= 1, got 0"):
        _plan(make_cfg, seeds[:2], 0)


@pytest.mark.parametrize("launcher", ["population", "basic", "joblib"])
def test_the_launcher_is_registered_beside_the_others(make_cfg: Make, launcher: str) -> None:
    cfg = make_cfg(f"hydra/launcher={launcher}")
    assert launcher in cfg.hydra.launcher._target_.lower()
    if launcher == "population":
        assert make_cfg("hydra/launcher=population").hydra.launcher.max_members == 32
        assert (
            make_cfg(
                "hydra/launcher=population", "hydra.launcher.max_members=4"
            ).hydra.launcher.max_members
            == 4
        )


def _multirun(sweep_dir: Path, task: Callable[[DictConfig], Any], *overrides: str) -> list:
    """Run a sweep in this process (the task function: ``task``) and return its JobReturns;
    Hydra's logging is set back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    GlobalHydra.instance().clear()
    overrides = (*overrides, f"hydra.sweep.dir={sweep_dir}", "~hydra.callbacks.report")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), job_name="train", version_base="1.3"):
            hydra = GlobalHydra.instance().hydra
            (returns,) = hydra.multirun("config", task, list(overrides), False)
    finally:
        GlobalHydra.instance().clear()
        root.handlers, root.level = handlers, level
    return returns


@pytest.fixture
def fake_population(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """``population.run.train_population`` replaced by one that records its members, logs a
    line and returns a record per member (val/acc 0.5, 0.6, ...; the second member failed)."""
    calls: list = []

    def train_population(members: list[tuple[DictConfig, RunRecord]]) -> list[RunRecord]:
        calls.append(members)
        logging.getLogger("initbench.population").info("the population trains")
        records = [
            RunRecord(status="finished", metrics={"val/acc": 0.5 + i / 10}) for i in range(4)
        ]
        records[1] = RunRecord(status="failed", metrics={"val/acc": 0.1})
        return records[: len(members)]

    module = types.ModuleType("population.run")
    module.train_population = train_population
    monkeypatch.setitem(sys.modules, "population.run", module)
    yield calls


def test_a_failing_population_fails_its_members_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def train_population(members: list[tuple[DictConfig, dict]]) -> list[dict]:
        calls.append(len(members))
        raise RuntimeError("a bug of the population")

    monkeypatch.setitem(
        sys.modules, "population.run", types.SimpleNamespace(train_population=train_population)
    )
    sweep = ["model.width=16,32", "seed=0,1", "hydra/launcher=population"]
    returns = _multirun(tmp_path, lambda cfg: None, *sweep)
    assert calls == [2, 2]
    assert [(r.status, r.return_value) for r in returns] == [(JobStatus.COMPLETED, None)] * 4
    for run in ("model.width=16,seed=0", "model.width=32,seed=1"):
        assert "RuntimeError: a bug of the population" in (tmp_path / run / "train.log").read_text()


def _job_files(sweep: Path) -> dict[str, str]:
    """The files of a sweep's job folders by relative path: the ``.hydra/`` files' contents
    with the sweep's folder written ``SWEEP`` (and ``hydra.yaml`` without the launcher's own
    settings), the others' names."""
    files = {}
    for path in sorted(p for p in sweep.glob("*/**/*") if p.is_file()):
        text = path.read_text().replace(str(sweep), "SWEEP") if ".hydra" in path.parts else ""
        if path.name == "hydra.yaml":
            hydra = OmegaConf.create(text).hydra
            del hydra.launcher, hydra.overrides.hydra, hydra.runtime.choices["hydra/launcher"]
            text = OmegaConf.to_yaml(hydra)
        files[str(path.relative_to(sweep))] = text
    return files


def test_members_are_set_up_as_the_basic_launcher_sets_up_jobs(
    data_root: Path, tmp_path: Path, fake_population: list
) -> None:
    """Same folders, same ``.hydra/`` files, and each member's config and starting record
    equal what its job's task function gets (its own init in ``stats.title``, its folder)."""
    sweep = ["init=xavier_normal,kaiming_normal", "seed=0,1", *FAST_CLI, f"data.root={data_root}"]
    seen: dict[str, tuple[dict, RunRecord]] = {}

    def task(cfg: DictConfig) -> None:
        seen[Path(cfg.paths.output_dir).name] = (_plain(cfg), start_record(cfg))

    _multirun(tmp_path / "basic", task, *sweep)
    returns = _multirun(tmp_path / "population", task, "hydra/launcher=population", *sweep)
    assert len(seen) == 4  # the basic launcher's jobs; the population's went to the fake
    files = _job_files(tmp_path / "population")
    assert len(files) == 4 * 4  # .hydra/{config,hydra,overrides}.yaml and train.log per job
    assert files == _job_files(tmp_path / "basic")
    (members,) = fake_population
    for cfg, record in members:
        name = Path(cfg.paths.output_dir).name
        assert Path(cfg.paths.output_dir).parent == tmp_path / "population"
        basic_cfg, basic_record = seen[name]
        assert _plain(cfg) == _swap(basic_cfg, tmp_path)
        assert Path(record.output_dir).name == Path(basic_record.output_dir).name == name
        assert replace(record, output_dir=basic_record.output_dir) == basic_record
        assert cfg.stats.title == record.choices["init"] == name.split(",")[0][len("init=") :]
        assert "the population trains" in (Path(cfg.paths.output_dir) / "train.log").read_text()
    assert [r.return_value for r in returns] == [0.5, None, 0.7, 0.8]


def _plain(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def _swap(tree: dict, tmp_path: Path) -> dict:
    """``tree`` with the basic sweep's folder replaced by the population sweep's."""
    text = OmegaConf.to_yaml(OmegaConf.create(tree))
    basic, population = str(tmp_path / "basic"), str(tmp_path / "population")
    return OmegaConf.to_container(OmegaConf.create(text.replace(basic, population)))


def _sweep(log_dir: Path, data_root: Path, *overrides: str) -> tuple[str, Path]:
    """``python train.py -m OVERRIDES hydra/launcher=population`` on tiny data: its output and
    its sweep folder."""
    command = [sys.executable, "train.py", "-m", *overrides, "hydra/launcher=population"]
    command += [*FAST_CLI, f"data.root={data_root}", f"paths.log_dir={log_dir}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (folder,) = (log_dir / "multiruns").iterdir()
    return result.stdout + result.stderr, folder


def _statuses(folder: Path) -> dict[str, str]:
    return {
        p.parent.name: json.loads(p.read_text())["status"] for p in folder.glob("*/metrics.json")
    }


@pytest.mark.slow
def test_a_population_sweep_writes_every_run_and_the_report(data_root: Path, tmp_path: Path):
    inits = "init=xavier_normal,kaiming_normal"
    output, folder = _sweep(
        tmp_path, data_root, "model.depth=1", "model.width=16", inits, "seed=0,1"
    )
    assert "population of 4 runs: init=xavier_normal,kaiming_normal; seed=0,1" in output
    assert _statuses(folder) == {
        f"init={init},seed={seed}": "finished"
        for init in ("xavier_normal", "kaiming_normal")
        for seed in (0, 1)
    }
    for run in folder.glob("init=*"):
        assert list(run.glob("events.out.tfevents.*")), run
        assert (run / ".hydra" / "overrides.yaml").exists() and (run / "train.log").exists()
    assert "kaiming_normal" in (folder / "summary.md").read_text()


@pytest.mark.slow
def test_recurrent_runs_of_a_population_sweep_run_alone(data_root: Path, tmp_path: Path):
    output, folder = _sweep(tmp_path, data_root, "model=mlp,lstm", "seed=0,1")
    assert "population of 2 runs: model=mlp; seed=0,1" in output
    for seed in (0, 1):
        assert re.search(rf"#\d runs alone: model=lstm; seed={seed} \(model=lstm: .*\)", output)
    assert set(_statuses(folder).values()) == {"finished"} and len(_statuses(folder)) == 4


@pytest.mark.slow
def test_sweep_speed_quick_times_each_launcher(data_root: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.speed.sweep_speed", "--quick"]
    command += ["--out", str(tmp_path)]
    env = {**os.environ, "INITBENCH_DATA": str(data_root)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with (tmp_path / "sweep_speed.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [r["launcher"] for r in rows] == list(launchers(2))
    assert all(r["runs"] == r["ended"] == "4" and r["exit"] == "0" for r in rows), rows
    assert float(rows[0]["x basic"]) == 1.0 and all(float(r["wall s"]) > 0 for r in rows)
    assert "| MLP 5 x 100 | population |" in (tmp_path / "results.md").read_text()
