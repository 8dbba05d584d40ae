"""The summary of a sweep: which init trains which model best, and how reliably.

Written into the sweep folder at the end of every multirun (``sweeps.callback.SweepReport``)
and on demand, from the runs' records and events only (``sweeps.sweep.Sweep``):

    python -m sweeps.report logs/multiruns/2026-11-25_12-00-00 [--threshold 0.9]

``summary.csv`` (one row per run, each init's knobs as ``init.<knob>`` columns), ``cells.csv``
(one row per init and setting: n, mean, 95 % t interval, rank, Welch's test against the
setting's best), ``summary.md`` (the table of cells, the ranking and tests in words, every run
that did not finish), ``loss_curves.png`` and ``signal_at_init.png``; in TensorBoard, the
sweep's HParams experiment and seed aggregates (``sweeps.tensorboard``).
"""

import argparse
import csv
from collections import Counter
from pathlib import Path
from typing import Any

from sweeps.plots import plot_loss_curves, plot_signal
from sweeps.significance import ALPHA, compare_to_best, rank, t_interval
from sweeps.sweep import Sweep, SweepRun
from sweeps.tensorboard import write_sweep_tensorboard

COLUMNS = [
    "run",
    "status",
    "init",
    "model",
    "data",
    "seed",
    "val_acc",
    "best_val_acc",
    "val_loss",
    "test_acc",
    "test_loss",
    "steps",
    "step_to_threshold",
    "diverged_step",
    "diverged_layer",
    "error",
    "seconds",
    "overrides",
]
NOT_FINISHED = ("diverged", "failed", "incomplete", "missing")
CELL_COLUMNS = [
    "setting",
    "init",
    "rank",
    "n",
    "mean",
    "ci_low",
    "ci_high",
    "diff_to_best",
    "p_welch",
    "p_holm",
    "significant",
    *NOT_FINISHED,
]


def summary_row(run: SweepRun, threshold: float) -> dict[str, Any]:
    """One run as one flat row: its choices, status, final and best metrics."""
    record = run.record
    divergence = record.divergence
    return {
        "run": run.name,
        "status": run.status,
        "init": run.init,
        "model": record.choices.get("model"),
        "data": record.choices.get("data"),
        "seed": record.seed,
        "val_acc": run.metric("val/acc"),
        "best_val_acc": run.best("val/acc"),
        "val_loss": run.metric("val/loss"),
        "test_acc": run.metric("test/acc"),
        "test_loss": run.metric("test/loss"),
        "steps": record.steps,
        "step_to_threshold": run.first_step_reaching("val/acc", threshold),
        "diverged_step": divergence.step if divergence else None,
        "diverged_layer": divergence.layer if divergence else None,
        "error": record.error,
        "seconds": record.seconds,
        "overrides": " ".join(record.overrides),
    }


def cells(sweep: Sweep, rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[dict]]]:
    """Setting -> init -> its runs' rows (``rows`` by run name): the sweep's cells."""
    return {
        setting: {init: [rows[run.name] for run in runs] for init, runs in by_init.items()}
        for setting, by_init in sweep.cells().items()
    }


def _values(rows: list[dict[str, Any]], metric: str) -> list[float]:
    """The metric in % of the cell's finished runs (a diverged run has no final accuracy)."""
    return [100 * r[metric] for r in rows if r["status"] == "finished" and r[metric] is not None]


def analyse(by_init: dict[str, list[dict]], metric: str) -> tuple[list[str], dict, dict]:
    """One setting: its inits ranked, their values (% of finished runs) and each one's test
    against the best. Only a cell whose every run finished can be best: a cell with diverged
    or failed runs would be judged by its survivors."""
    values = {init: _values(rows, metric) for init, rows in by_init.items()}
    complete = {i for i, rows in by_init.items() if all(r["status"] == "finished" for r in rows)}
    tests = {c.init: c for c in compare_to_best(values, complete)}
    return rank(values, complete), values, tests


def cell_rows(table: dict[str, dict[str, list[dict]]], metric: str) -> list[dict[str, Any]]:
    """One row per cell: n, mean, 95 % t interval, rank in its setting, the difference to the
    setting's best and Welch's p-value against it (Holm-adjusted), the unfinished runs."""
    out = []
    for setting, by_init in table.items():
        order, values, tests = analyse(by_init, metric)
        for position, init in enumerate(order, start=1):
            interval = t_interval(values[init])
            test = tests.get(init)
            statuses = Counter(r["status"] for r in by_init[init])
            out.append(
                {
                    "setting": setting,
                    "init": init,
                    "rank": position,
                    "n": interval.n,
                    "mean": interval.mean,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "diff_to_best": test.difference if test else 0.0 if interval.n else None,
                    "p_welch": test.p if test else None,
                    "p_holm": test.p_holm if test else None,
                    "significant": test.significant if test else None,
                    **{s: statuses.get(s, 0) for s in NOT_FINISHED},
                }
            )
    return out


def report_metric(rows: list[dict[str, Any]]) -> str:
    """Test accuracy when the sweep tested, else validation accuracy."""
    return "test_acc" if any(r["test_acc"] is not None for r in rows) else "val_acc"


def markdown(
    sweep: Sweep,
    rows: list[dict[str, Any]],
    table: dict[str, dict[str, list[dict]]],
) -> str:
    """The init x setting table (mean and 95 % interval over seeds), the ranking and tests per
    setting, and the list of unfinished runs."""
    metric = report_metric(rows)
    columns = list(table)
    lines = [
        f"# Sweep summary: {sweep.folder.name}",
        "",
        f"{len(rows)} runs: "
        + ", ".join(f"{n} {s}" for s, n in Counter(r["status"] for r in rows).items()),
        "",
        f"{metric.replace('_', ' ')} in %: mean [95 % confidence interval, Student t] over "
        "seeds (n = finished runs per cell).",
        "",
        "| init | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for init in dict.fromkeys(row["init"] for row in rows):
        lines.append(
            f"| {init} | "
            + " | ".join(_cell(table[c].get(init, []), metric) for c in columns)
            + " |"
        )
    lines += _ranking(table, metric)
    keys = sweep.varying(ignore=())
    names = [sweep.label(run, keys) for run in sweep.runs]
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
    lines += ["", "![signal at the end](signal_at_end.png)"]
    return "\n".join(lines) + "\n"


def _ranking(table: dict[str, dict[str, list[dict]]], metric: str) -> list[str]:
    """Per setting: inits best first, each compared with the best in words."""
    lines = [
        "",
        "## Ranking and tests",
        "",
        "Per setting, inits by mean, best first; each compared with the best by Welch's t-test "
        f"(two-sided), p-values Holm-corrected over the setting's comparisons, alpha = {ALPHA}; "
        "a cell with diverged or failed runs is not eligible as the best.",
    ]
    for setting, by_init in table.items():
        order, values, tests = analyse(by_init, metric)
        lines += ["", f"**{setting}**", ""]
        for position, init in enumerate(order, start=1):
            unfinished = sum(r["status"] != "finished" for r in by_init[init])
            note = (
                f" ({unfinished} of {len(by_init[init])} runs did not finish)" if unfinished else ""
            )
            if init in tests:
                lines.append(f"{position}. {tests[init].sentence(setting)}{note}")
            elif values[init]:
                lines.append(f"{position}. {init}: best, {_interval(values[init])}")
            else:
                lines.append(f"{position}. {init}: no finished run{note}")
    return lines


def _interval(values: list[float]) -> str:
    interval = t_interval(values)
    if interval.n < 2:
        return f"{interval.mean:.2f} (n={interval.n})"
    return f"{interval.mean:.2f} [{interval.low:.2f}, {interval.high:.2f}] (n={interval.n})"


def _cell(rows: list[dict[str, Any]], metric: str) -> str:
    values = _values(rows, metric)
    text = _interval(values) if values else "–"
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
    sweep = Sweep.load(sweep_dir)
    rows = [summary_row(run, threshold) for run in sweep.runs]
    knobs = sorted({f"init.{k}" for run in sweep.runs for k in run.record.init_knobs})
    with (sweep_dir / "summary.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, [*COLUMNS, *knobs])
        writer.writeheader()
        for run, row in zip(sweep.runs, rows):
            writer.writerow(row | {f"init.{k}": v for k, v in run.record.init_knobs.items()})
    table = cells(sweep, {row["run"]: row for row in rows})
    by_cell = cell_rows(table, report_metric(rows))
    with (sweep_dir / "cells.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, CELL_COLUMNS)
        writer.writeheader()
        writer.writerows(by_cell)
    (sweep_dir / "summary.md").write_text(markdown(sweep, rows, table))
    write_sweep_tensorboard(sweep)
    plot_loss_curves(sweep, sweep_dir / "loss_curves.png")
    plot_signal(sweep, sweep_dir / "signal_at_init.png", at="init")
    plot_signal(sweep, sweep_dir / "signal_at_end.png", at="end")
    return rows


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
