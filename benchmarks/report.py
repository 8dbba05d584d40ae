"""The summary of a sweep: which init trains which model best, and how reliably.

Written into the sweep folder at the end of every multirun (Hydra callback ``SweepReport``) and
on demand, from the runs' own files only:

    python -m benchmarks.report logs/multiruns/2026-11-25_12-00-00 [--threshold 0.9]

``summary.csv`` (one row per run), ``summary.md`` (init x the other swept values, mean +- std
over seeds, and every run that did not finish), ``loss_curves.png`` and ``signal_at_init.png``.
"""

import argparse
import csv
import logging
import sys
from collections import Counter
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from benchmarks.report_plots import plot_loss_curves, plot_signal_at_init
from benchmarks.sweep_runs import Run, group_label, load_runs, varying_keys

log = logging.getLogger(__name__)

COLUMNS = [
    "run", "status", "init", "model", "data", "seed", "val_acc", "best_val_acc", "val_loss",
    "test_acc", "test_loss", "steps", "step_to_threshold", "diverged_step", "diverged_layer",
    "error", "seconds", "overrides",
]  # fmt: skip
NOT_FINISHED = ("diverged", "failed", "incomplete", "missing")


def summary_row(run: Run, threshold: float) -> dict[str, Any]:
    """One run as one flat row: its choices, status, final and best metrics."""
    record, choices = run.record, run.record.get("choices", {})
    divergence = record.get("divergence", {})
    return {
        "run": run.name,
        "status": run.status,
        "init": run.init,
        "model": choices.get("model"),
        "data": choices.get("data"),
        "seed": record.get("seed"),
        "val_acc": run.metric("val/acc"),
        "best_val_acc": run.best("val/acc"),
        "val_loss": run.metric("val/loss"),
        "test_acc": run.metric("test/acc"),
        "test_loss": run.metric("test/loss"),
        "steps": record.get("steps"),
        "step_to_threshold": run.first_step_reaching("val/acc", threshold),
        "diverged_step": divergence.get("step"),
        "diverged_layer": divergence.get("layer"),
        "error": record.get("error"),
        "seconds": record.get("seconds"),
        "overrides": " ".join(record.get("overrides", [])),
    }


def markdown(runs: list[Run], rows: list[dict[str, Any]], sweep_dir: Path) -> str:
    """The init x setting table (mean +- std over seeds) and the list of unfinished runs."""
    metric = "test_acc" if any(r["test_acc"] is not None for r in rows) else "val_acc"
    keys = varying_keys(runs)
    labels = [group_label(run, keys) for run in runs]
    columns = list(dict.fromkeys(labels))
    cells: dict[tuple[str, str], list[dict]] = {}
    for label, row in zip(labels, rows):
        cells.setdefault((row["init"], label), []).append(row)
    lines = [
        f"# Sweep summary: {sweep_dir.name}",
        "",
        f"{len(rows)} runs: "
        + ", ".join(f"{n} {s}" for s, n in Counter(r["status"] for r in rows).items()),
        "",
        f"{metric.replace('_', ' ')} in %, mean ± std over seeds (n = runs per cell).",
        "",
        "| init | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for init in dict.fromkeys(row["init"] for row in rows):
        lines.append(
            f"| {init} | "
            + " | ".join(_cell(cells.get((init, c), []), metric) for c in columns)
            + " |"
        )
    names = [group_label(run, varying_keys(runs, ignore=())) for run in runs]
    unfinished = [(n, r) for n, r in zip(names, rows) if r["status"] in NOT_FINISHED]
    if unfinished:
        lines += [
            "",
            "## Runs that did not finish",
            "",
            "| run | status | detail |",
            "|---|---|---|",
        ]
        lines += [f"| {n} | {r['status']} | {_detail(r)} |" for n, r in unfinished]
    lines += ["", "![loss curves](loss_curves.png)", "", "![signal at init](signal_at_init.png)"]
    return "\n".join(lines) + "\n"


def _cell(rows: list[dict[str, Any]], metric: str) -> str:
    values = [100 * r[metric] for r in rows if r["status"] == "finished" and r[metric] is not None]
    text = "–"
    if values:
        spread = f" ± {stdev(values):.2f}" if len(values) > 1 else ""
        text = f"{fmean(values):.2f}{spread} (n={len(values)})"
    bad = [s for s in NOT_FINISHED if any(r["status"] == s for r in rows)]
    return text + "".join(f", {sum(r['status'] == s for r in rows)} {s}" for s in bad)


DETAIL = {
    "incomplete": "metrics.json says running: killed or still running",
    "missing": "no metrics.json: never started",
}


def _detail(row: dict[str, Any]) -> str:
    if row["status"] == "diverged":
        layer = row["diverged_layer"] or "none"
        return f"step {row['diverged_step']}, first layer out of bounds: {layer}"
    return (row["error"] or DETAIL.get(row["status"], row["status"])).replace("|", "/")


def write_report(sweep_dir: Path, threshold: float = 0.9) -> list[dict[str, Any]]:
    """Write summary.csv, summary.md and the plots into ``sweep_dir``; return the rows."""
    runs = load_runs(sweep_dir)
    rows = [summary_row(run, threshold) for run in runs]
    with (sweep_dir / "summary.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "summary.md").write_text(markdown(runs, rows, sweep_dir))
    keys = varying_keys(runs, ignore=("seed", "init"))
    plot_loss_curves(runs, keys, sweep_dir / "loss_curves.png")
    plot_signal_at_init(runs, keys, sweep_dir / "signal_at_init.png")
    return rows


class SweepReport(Callback):
    """Hydra callback: at the end of a multirun, write the report, log it, and exit with the
    number of runs that failed or never ended (0 when all finished or diverged)."""

    def __init__(self, threshold: float = 0.9) -> None:
        self.threshold = threshold

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = write_report(sweep_dir, self.threshold)
        log.info(
            "sweep summary (%s):\n%s",
            sweep_dir / "summary.md",
            (sweep_dir / "summary.md").read_text(),
        )
        failed = sum(r["status"] in ("failed", "incomplete", "missing") for r in rows)
        if failed:
            log.error("%d of %d runs failed; see %s", failed, len(rows), sweep_dir / "summary.md")
            sys.exit(min(failed, 255))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument(
        "--threshold", type=float, default=0.9, help="val acc for step_to_threshold"
    )
    args = parser.parse_args()
    if not args.sweep_dir.is_dir():
        parser.error(f"no such sweep folder: {args.sweep_dir}")
    rows = write_report(args.sweep_dir, args.threshold)
    print((args.sweep_dir / "summary.md").read_text())
    print(f"{len(rows)} runs; wrote summary.csv, summary.md and plots to {args.sweep_dir}")


if __name__ == "__main__":
    main()
