"""What a sweep adds to TensorBoard when it ends, so its runs compare there at a glance.

- A row in the HParams tab for every run that failed or never ended (a finished or diverged run
  wrote its own), from its record.
- Seed aggregates (TensorBoard itself has none: tensorboard#376): for each configuration that
  differs only by seed, a run ``mean/<configuration>`` with the mean over seeds under the runs'
  own tags, so it overlays them, and the spread under ``<tag>/seeds_min`` and
  ``<tag>/seeds_max``, drawn as a band by Custom Scalars margin charts in the "training"
  category. Training curves (train/, val/, test/) at every logged step; per-layer statistics
  at step 0, the init itself. A step's mean is over the seeds that reached it (a diverged run
  stops).
"""

import shutil
from dataclasses import replace
from statistics import fmean

from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.custom_scalar import layout_pb2
from torch.utils.tensorboard import SummaryWriter

from callbacks.dashboard import TRAINING_CATEGORY, layout_summary, write_summary
from callbacks.hparams import (
    columns,
    experiment_summary,
    session_end,
    session_start,
    typed,
)
from resolvers import run_name
from runs.record import RunRecord
from sweeps.sweep import Sweep, SweepRun

CURVES = ("train/", "val/", "test/")  # aggregated at every step; the rest at step 0
BANDS = ("train/loss_step", "train/acc_step", "val/loss", "val/acc")
STATUS_SUFFIX = ".status"  # the session files this module writes into run folders
SPREAD = ("seeds_min", "seeds_max")


def write_sweep_tensorboard(sweep: Sweep) -> list[str]:
    """Write the rows of unfinished runs and the seed aggregates; return the aggregates'
    names."""
    for run in sweep.runs:
        _write_status(run, sweep)
    return _write_aggregates(sweep)


def _write_status(run: SweepRun, sweep: Sweep) -> None:
    """A failed, killed or never started run's row in the HParams tab, from its record (a
    finished or diverged run wrote its own)."""
    for old in run.folder.glob(f"*{STATUS_SUFFIX}"):
        old.unlink()
    if run.status in ("finished", "diverged"):
        return
    record = replace(run.record, status=run.status)
    with SummaryWriter(str(run.folder), filename_suffix=STATUS_SUFFIX) as writer:
        for summary in _session(record, [r.record for r in sweep.runs]):
            write_summary(writer, summary, 0)


def _session(record: RunRecord, records: list[RunRecord]) -> list[Summary]:
    """A session of the sweep's HParams table, declared with every run's columns."""
    return [
        experiment_summary(records),
        session_start(typed(record.hparams, columns(records)), record.name),
        session_end(record.status),
    ]


def _write_aggregates(sweep: Sweep) -> list[str]:
    """One ``mean/<configuration>`` run per configuration with 2 or more seeds that logged
    curves."""
    shutil.rmtree(sweep.folder / "mean", ignore_errors=True)
    records = [r.record for r in sweep.runs]
    written = []
    for label, group in sweep.groups(ignore=("seed",)).items():
        group = [run for run in group if run.curves]
        if len(group) < 2:
            continue
        name = f"mean/{run_name(label)}"
        row = _common([run.record.hparams for run in group]) | {"status": f"mean of {len(group)}"}
        with SummaryWriter(str(sweep.folder / name)) as writer:
            for step, values in sorted(_aggregate(group).items()):
                write_summary(writer, _scalars(values), step)
            start = session_start(typed(row, columns(records)), name)
            for summary in (experiment_summary(records), start):
                write_summary(writer, summary, 0)
            write_summary(writer, session_end("finished"), 0)
            write_summary(writer, layout_summary(_bands()), 0)
        written.append(name)
    return written


def _aggregate(group: list[SweepRun]) -> dict[int, dict[str, float]]:
    """step -> tag -> value: the mean under the tag, the spread under ``<tag>/seeds_min`` and
    ``<tag>/seeds_max``."""
    steps: dict[int, dict[str, float]] = {}
    for tag in sorted({t for run in group for t in run.curves}):
        for step in sorted({s for run in group for s in run.curves.get(tag, {})}):
            if step > 0 and not tag.startswith(CURVES):
                continue
            values = [run.curves[tag][step] for run in group if step in run.curves.get(tag, {})]
            low, high = (f"{tag}/{s}" for s in SPREAD)
            steps.setdefault(step, {}).update(
                {tag: fmean(values), low: min(values), high: max(values)}
            )
    return steps


def _common(rows: list[dict]) -> dict:
    """The values every row shares (the seed is what differs)."""
    return {k: v for k, v in rows[0].items() if k != "seed" and all(r.get(k) == v for r in rows)}


def _scalars(values: dict[str, float]) -> Summary:
    return Summary(value=[Summary.Value(tag=t, simple_value=v) for t, v in values.items()])


def _bands() -> layout_pb2.Layout:
    """Custom Scalars: each training curve's mean with its min-max band over seeds, in the
    category every run's layout opens with, so it merges there and stays first."""
    series = layout_pb2.MarginChartContent.Series
    charts = [
        layout_pb2.Chart(
            title=f"{tag}: mean, min-max over seeds",
            margin=layout_pb2.MarginChartContent(
                series=[series(value=tag, lower=f"{tag}/seeds_min", upper=f"{tag}/seeds_max")]
            ),
        )
        for tag in BANDS
    ]
    return layout_pb2.Layout(category=[layout_pb2.Category(title=TRAINING_CATEGORY, chart=charts)])
