"""Multirun end to end: failed and diverged runs, the report, resume, launchers, experiments."""

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from PIL import Image

from resolvers import MAX_NAME, run_name, sweep_dir
from runs.record import RunRecord
from sweeps.keys import swept_keys
from sweeps.plots import _layer_output_tags, _mark_divergence, _mean_at
from sweeps.report import write_report
from sweeps.sweep import Sweep, SweepRun
from tests.support import CONF_DIR, FAST_CLI, ROOT

# kaiming trains, normal_large diverges on a 10-layer MLP, raises (tests/conf/init/) fails.
SWEEP = [
    "init=kaiming_normal,normal_large,raises",
    "model.depth=10",
    "hydra.searchpath=[file://tests/conf]",
]


def _multirun(log_dir: Path, data_root: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "train.py", "-m", *SWEEP, *FAST_CLI, f"data.root={data_root}"]
    command += [f"paths.log_dir={log_dir}", *overrides]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> tuple:
    log_dir = tmp_path_factory.mktemp("logs")
    result = _multirun(log_dir, data_root)
    (folder,) = (log_dir / "multiruns").iterdir()
    return result, folder


def _rows(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "summary.csv").open() as file:
        return {row["init"]: row for row in csv.DictReader(file)}


def _record(folder: Path, run: str) -> dict:
    return json.loads((folder / run / "metrics.json").read_text())


@pytest.mark.slow
def test_sweep_survives_a_failed_and_a_diverged_run(sweep) -> None:
    result, folder = sweep
    assert result.returncode == 1, result.stderr[-2000:]  # exit status: the number that failed
    assert "1 of 3 runs failed" in result.stdout + result.stderr
    rows = _rows(folder)
    assert {i: r["status"] for i, r in rows.items()} == {
        "kaiming_normal": "finished",
        "normal_large": "diverged",
        "raises": "failed",
    }
    assert rows["raises"]["error"] == "RuntimeError: injected failure"
    assert rows["normal_large"]["diverged_step"] != "" and rows["normal_large"]["diverged_layer"]
    for name in ("summary.md", "cells.csv", "signal_at_init.png", "signal_at_end.png"):
        assert (folder / name).stat().st_size > 0
    assert Image.open(folder / "loss_curves.png").size[0] >= 900


@pytest.mark.slow
def test_a_population_sweep_reports_what_the_basic_launcher_reports(
    sweep, data_root: Path, tmp_path: Path
) -> None:
    """The same sweep (one run trains, one diverges, one fails in its init) under
    ``hydra/launcher=population``: every run ends as under the basic launcher, and the report
    is the same, number for number."""
    basic, basic_folder = sweep
    result = _multirun(tmp_path, data_root, "hydra/launcher=population")
    assert result.returncode == basic.returncode == 1, result.stderr[-2000:]
    (folder,) = (tmp_path / "multiruns").iterdir()
    assert "population of 3 runs" in result.stdout + result.stderr
    rows, basic_rows = _rows(folder), _rows(basic_folder)
    for init, row in rows.items():
        expected = basic_rows[init]
        for column in ("status", "error", "diverged_step", "diverged_layer", "steps"):
            assert row[column] == expected[column], (init, column)
        for column in ("val_acc", "best_val_acc", "test_acc", "val_loss"):
            if expected[column]:
                assert float(row[column]) == pytest.approx(float(expected[column]), rel=1e-4)
    body, basic_body = (
        (f / "summary.md").read_text().split("\n", 1)[1] for f in (folder, basic_folder)
    )
    assert body == basic_body


@pytest.mark.slow
def test_sweep_signal_figures_plot_layer_outputs_only(sweep) -> None:
    """Each run's record tells its layers from its activations."""
    _, folder = sweep
    (run,) = [r for r in Sweep.load(folder).runs if r.name == "init=kaiming_normal"]
    kinds = {tag.split(".", 1)[1]: layer["kind"] for tag, layer in run.record.layers.items()}
    assert kinds["net.layers.0.0"] == "layer output" and kinds["net.head"] == "layer output"
    assert kinds["net.layers.0.2"] == "activation output"
    assert run.record.layers["000.net.layers.0.0"]["type"] == "Linear"
    tags = _layer_output_tags([run])
    assert tags and all(kinds[t.split("/", 1)[1].split(".", 1)[1]] == "layer output" for t in tags)
    assert len(tags) < len([t for t in run.curves if t.startswith("watched.act_std/")])


@pytest.mark.slow
def test_a_diverged_run_is_marked_where_it_stopped(sweep) -> None:
    runs = [r for r in Sweep.load(sweep[1]).runs if r.status == "diverged"]
    fig, ax = plt.subplots()
    _mark_divergence(ax, runs[0], "C1")
    (line,) = ax.lines
    assert line.get_marker() == "x" and line.get_xdata()[0] == runs[0].record.divergence.step
    plt.close(fig)


@pytest.mark.slow
def test_summary_equals_the_runs_own_files(sweep) -> None:
    _, folder = sweep
    for row in _rows(folder).values():
        record = _record(folder, row["run"])
        assert row["status"] == record["status"] and row["seed"] == str(record["seed"])
        for column, key in (("val_acc", "val/acc"), ("test_acc", "test/acc")):
            expected = record.get("metrics", {}).get(key)
            assert (float(row[column]) if row[column] else None) == expected
    kaiming = _record(folder, _rows(folder)["kaiming_normal"]["run"])
    cell = f"| kaiming_normal | {100 * kaiming['metrics']['test/acc']:.2f} (n=1) |"
    assert cell in (folder / "summary.md").read_text()


@pytest.mark.slow
def test_report_lists_killed_and_missing_runs(sweep, tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    shutil.copytree(sweep[1], folder)
    killed = folder / _rows(folder)["kaiming_normal"]["run"]
    record = json.loads((killed / "metrics.json").read_text())
    (killed / "metrics.json").write_text(json.dumps({**record, "status": "running"}))
    (folder / "never_started" / ".hydra").mkdir(parents=True)
    statuses = sorted(row["status"] for row in write_report(folder))
    assert statuses == ["diverged", "failed", "incomplete", "missing"]
    summary = (folder / "summary.md").read_text()
    assert "| incomplete | metrics.json says running: killed or still running |" in summary
    assert "| missing | no metrics.json: never started |" in summary


def test_technical_keys_do_not_split_the_report() -> None:
    """A sweep continued with resume=true (or with moved logs) is the same experiment."""

    def run(name: str, *overrides: str) -> SweepRun:
        return SweepRun(Path(name), name, RunRecord(overrides=["init=zeros", *overrides]))

    sweep = Sweep(
        Path("sweep"),
        [
            run("a", "model=mlp"),
            run("b", "model=cnn", "resume=true", "paths.log_dir=/x", "hydra/launcher=joblib"),
            run("c", "model=cnn", "+trainer.enable_progress_bar=false", "data.root=/data"),
        ],
    )
    assert sweep.varying() == sweep.varying(ignore=()) == ["model"]


@pytest.mark.slow
def test_resume_skips_ended_runs_and_continues_the_rest(sweep, data_root, tmp_path: Path) -> None:
    """Re-run the same command with resume=true (here through the joblib launcher)."""
    log_dir = tmp_path / "logs"
    shutil.copytree(sweep[1], log_dir / "multiruns" / sweep[1].name)
    folder = log_dir / "multiruns" / sweep[1].name
    rows = _rows(folder)
    interrupted = folder / rows["kaiming_normal"]["run"]
    before = _record(folder, rows["kaiming_normal"]["run"])
    (interrupted / "metrics.json").write_text(json.dumps({**before, "status": "running"}))
    diverged = _record(folder, rows["normal_large"]["run"])
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "resume=true"]
    result = _multirun(log_dir, data_root, *launcher)
    assert result.returncode == 1 and len(list((log_dir / "multiruns").iterdir())) == 1
    assert _record(folder, rows["normal_large"]["run"]) == diverged  # skipped
    resumed = _record(folder, rows["kaiming_normal"]["run"])
    assert resumed["status"] == "finished" and resumed["steps"] == before["steps"]
    assert "resume: continuing from" in (interrupted / "train.log").read_text()
    assert "resume" not in (folder / "summary.md").read_text()  # one column, as before


def test_sweep_dir_is_new_or_with_resume_the_latest(tmp_path: Path) -> None:
    assert sweep_dir(str(tmp_path), False).startswith(str(tmp_path) + "/20")
    for name in ("2026-01-01_00-00-00", "2026-02-01_00-00-00"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "multirun.yaml").touch()
    (tmp_path / "2027-not-a-sweep").mkdir()
    assert sweep_dir(str(tmp_path), True) == str(tmp_path / "2026-02-01_00-00-00")


def test_run_names_are_overrides_short_and_unique() -> None:
    assert run_name("") == "defaults" and run_name("init=zeros") == "init=zeros"
    long = ",".join(f"+trainer.option_{i}=value" for i in range(20))
    a, b = run_name(long), run_name(long + "x")
    assert len(a.encode()) <= MAX_NAME + 9 and a != b and a.startswith("+trainer.option_0")


@pytest.mark.slow
def test_job_folders_are_named_by_the_swept_values_only(sweep) -> None:
    """The sweep also fixes model.depth and a dozen technical keys: they stay out of the name
    and in the job's own overrides file."""
    _, folder = sweep
    jobs = {p.parent.name for p in folder.glob("*/metrics.json")}
    assert jobs == {"init=kaiming_normal", "init=normal_large", "init=raises"}
    overrides = (folder / "init=kaiming_normal" / ".hydra" / "overrides.yaml").read_text()
    assert "model.depth=10" in overrides and "trainer.limit_train_batches=2" in overrides


def test_swept_keys_come_from_the_command_line_and_the_experiment(tmp_path: Path) -> None:
    sweep = _compose("experiment=init_vs_depth")
    task = ["experiment=init_vs_depth", "seed=0,1", "model.width=64", "init@init.fallback=a,b"]
    sweep.hydra.overrides.task = task
    OmegaConf.save(sweep, tmp_path / "multirun.yaml")
    expected = {"init", "model.depth", "seed", "init@init.fallback"}
    assert swept_keys(tmp_path / "multirun.yaml") == expected
    assert swept_keys(tmp_path / "absent.yaml") == set()


def _compose(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_each_of_its_runs(experiment: str) -> None:
    params = _compose(f"experiment={experiment}").hydra.sweeper.params
    assert params, f"conf/experiment/{experiment}.yaml sweeps nothing"
    for key, values in params.items():  # every value of every axis composes
        for value in str(values).split(","):
            _compose(f"experiment={experiment}", f"{key}={value}")


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local", "submitit_slurm"])
def test_launchers_compose(launcher: str) -> None:
    cfg = _compose(f"hydra/launcher={launcher}")
    assert launcher.split("_")[0] in cfg.hydra.launcher._target_.lower()


def test_the_end_profile_ignores_a_seed_that_blew_up() -> None:
    tag = "watched.act_std/000.net.layers.0.0"
    kept = SweepRun(Path("a"), "a", RunRecord(), {tag: {0: 1.0, 10: 2.0}})
    blown = SweepRun(Path("b"), "b", RunRecord(), {tag: {0: 3.0, 5: math.inf}})
    assert _mean_at([kept, blown], tag, "end") == 2.0
    assert _mean_at([kept, blown], tag, "init") == 2.0
