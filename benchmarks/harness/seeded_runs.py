"""Several labelled train.py configs over several seeds, in this process: records, loss curves,
and a table of means with Student-t 95 % intervals (``sweeps.significance``).

Each run is ``train.train(train.compose(...))`` with the CSV logger, so its training loss
curve is read back from the run's ``metrics.csv`` (collect first, present second). Runs use one
CPU thread: on a shared 2-core machine two threads of small matmuls wait on each other and ran
10-20x slower here (measured on the edge-of-chaos MLPs).
"""

import contextlib
import csv
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from benchmarks.harness.tables import experiment_parser, markdown_table, parse, save_figure
from runs.record import RunRecord
from sweeps.significance import t_interval
from train import compose, train

QUIET = [
    "logger=csv",
    "stats=off",
    "++trainer.enable_progress_bar=false",
    "++trainer.enable_model_summary=false",
]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one intra-op thread, restoring the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class SeededRun:
    """One run of a study: its record and its training loss curve [(step, train loss)]."""

    record: RunRecord
    curve: list[tuple[int, float]]


def run_seeds(
    configs: dict[str, list[str]], seeds: int, folder: Path, overrides: list[str]
) -> dict[str, list[SeededRun]]:
    """Train every config with seeds 0..``seeds``-1 into ``folder/<label>/seed<k>``; per label,
    each run's record and loss curve."""
    logging.getLogger("lightning").setLevel(logging.WARNING)
    runs: dict[str, list[SeededRun]] = {}
    with one_thread():
        for label, config in configs.items():
            for seed in range(seeds):
                output_dir = folder / label.replace(" ", "_") / f"seed{seed}"
                cfg = compose(*config, *QUIET, f"seed={seed}", *overrides, output_dir=output_dir)
                record = train(cfg)
                curve = loss_curve(output_dir / "metrics.csv")
                runs.setdefault(label, []).append(SeededRun(record, curve))
    return runs


def loss_curve(path: Path) -> list[tuple[int, float]]:
    """(step, train/loss_step) from a CSV logger's file; [] if it logged none."""
    if not path.exists():
        return []
    with path.open() as file:
        rows = [r for r in csv.DictReader(file) if r.get("train/loss_step")]
    return [(int(r["step"]), float(r["train/loss_step"])) for r in rows]


def accuracy(record: RunRecord) -> float:
    """Test accuracy in %, chance (10) for a run that diverged or has none."""
    value = record.metric("test/acc")
    return 10.0 if value is None else 100.0 * value


def summary_rows(runs: dict[str, list[SeededRun]]) -> list[dict[str, Any]]:
    """One row per label: test accuracy mean and 95 % t interval, diverged runs counted."""
    rows = []
    for label, seeded in runs.items():
        values = [accuracy(run.record) for run in seeded]
        interval = t_interval(values)
        rows.append(
            {
                "init": label,
                "test acc (mean, 95% CI)": f"{interval.mean:.2f} % "
                f"[{interval.low:.2f}, {interval.high:.2f}]",
                "per seed": ", ".join(f"{v:.2f}" for v in values),
                "diverged": sum(run.record.status == "diverged" for run in seeded),
                "_mean": interval.mean,
                "_values": values,
            }
        )
    return rows


def plot_curves(runs: dict[str, list[SeededRun]], title: str, path: Path) -> None:
    """Training loss against step, one colour per label, one line per seed."""
    fig = Figure(figsize=(6.5, 4), dpi=90)
    ax = fig.subplots()
    for index, (label, seeded) in enumerate(runs.items()):
        for k, run in enumerate(seeded):
            if run.curve:
                steps, losses = zip(*run.curve)
                ax.plot(steps, losses, color=f"C{index}", alpha=0.8, label=None if k else label)
    ax.set(xlabel="step", ylabel="training loss (batch)", yscale="log", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def command(name: str, quick: bool, overrides: list[str]) -> str:
    """The command line that reproduces a results page, for its notes."""
    parts = ["INITBENCH_DATA=../shared/data python -m", f"benchmarks.studies.{name}"]
    return " ".join([*parts, *(["--quick"] if quick else []), *overrides])


def script_main(doc: str, name: str, run: Callable[..., dict[str, list[dict]]]) -> None:
    """``--out DIR``, ``--quick`` and Hydra overrides for the data and the runs; prints the
    tables (``tables.script_main`` plus the overrides, for experiments on MNIST)."""
    parser = experiment_parser(doc)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.root=PATH")
    args = parse(parser, name)
    for rows in run(args.out, args.quick, args.overrides).values():
        print(markdown_table(rows))
