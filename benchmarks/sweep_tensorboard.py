"""What a sweep adds to TensorBoard when it ends, so its runs compare there at a glance.

- The HParams experiment, declared once in the sweep folder: every column any run has, every
  value seen (``callbacks.hparams``); runs that failed or never ended get their row too.
- Seed aggregates (TensorBoard itself has none: tensorboard#376): for each configuration that
  differs only by seed, a run ``mean/<configuration>`` with the mean over seeds under the runs'
  own tags, so it overlays them, and the spread under ``seeds_min/<tag>`` and
  ``seeds_max/<tag>``, drawn as a band by a Custom Scalars margin chart. Training curves
  (train/, val/, test/, learning rate) at every logged step; per-layer statistics at step 0,
  the init itself. A step's mean is over the seeds that reached it (a diverged run stops).
"""

import shutil
from pathlib import Path
from statistics import fmean
from typing import Any

from omegaconf import OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from benchmarks.sweep_runs import Run, group_label, varying_keys
from callbacks.hparams import experiment_summary, run_hparams, session_summaries
from resolvers import run_name

CURVES = ("train/", "val/", "test/")  # aggregated at every step; the rest at step 0
BANDS = ("train/loss_step", "train/loss_epoch", "val/loss", "val/acc", "train/acc_epoch")
STATUS_SUFFIX = ".status"  # the session files this module writes into run folders


def write_sweep_tensorboard(runs: list[Run], sweep_dir: Path) -> list[str]:
    """Write the experiment, the rows of unfinished runs and the seed aggregates; return the
    aggregate runs' names."""
    rows = [_hparams(run) for run in runs]
    for run, hparams in zip(runs, rows):
        _write_status(run, hparams)
    aggregates = _write_aggregates(runs, sweep_dir)
    for old in sweep_dir.glob("events.out.tfevents.*"):  # a rebuilt report replaces its own
        old.unlink()
    with SummaryWriter(str(sweep_dir)) as writer:
        writer._get_file_writer().add_summary(experiment_summary(rows + list(aggregates.values())))
    return list(aggregates)


def _hparams(run: Run) -> dict[str, Any]:
    """The run's HParams values: as it logged them, or from its saved config when it did not
    get that far (failed, killed)."""
    if "hparams" in run.record:
        return run.record["hparams"]
    config = run.folder / ".hydra" / "config.yaml"
    if not config.exists():
        return {"status": run.status}
    return run_hparams(OmegaConf.load(config), run.record.get("choices", {}), run.status)


def _write_status(run: Run, hparams: dict[str, Any]) -> None:
    """A failed, killed or never started run's row in the HParams tab (a finished or diverged
    run wrote its own)."""
    for old in run.folder.glob(f"*{STATUS_SUFFIX}"):
        old.unlink()
    if "hparams" in run.record:
        return
    with SummaryWriter(str(run.folder), filename_suffix=STATUS_SUFFIX) as writer:
        for summary in session_summaries(hparams, run.status):
            writer._get_file_writer().add_summary(summary)


def _write_aggregates(runs: list[Run], sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """One ``mean/<configuration>`` run per configuration with 2 or more seeds that logged
    curves; returns name -> its HParams values."""
    shutil.rmtree(sweep_dir / "mean", ignore_errors=True)
    keys = varying_keys(runs, ignore=("seed",))
    groups: dict[str, list[Run]] = {}
    for run in runs:
        if run.curves:
            groups.setdefault(group_label(run, keys), []).append(run)
    written = {}
    for label, group in groups.items():
        if len(group) < 2:
            continue
        name = f"mean/{run_name(label)}"
        hparams = _common([_hparams(run) for run in group]) | {"status": f"mean of {len(group)}"}
        with SummaryWriter(str(sweep_dir / name)) as writer:
            file_writer = writer._get_file_writer()
            for step, values in sorted(_aggregate(group).items()):
                file_writer.add_summary(_scalars(values), step)
            for summary in session_summaries(hparams, "finished"):
                file_writer.add_summary(summary)
            writer.add_custom_scalars(_bands())
        written[name] = hparams
    return written


def _aggregate(group: list[Run]) -> dict[int, dict[str, float]]:
    """step -> tag -> value: the mean under the tag, the spread under seeds_min/ and
    seeds_max/."""
    steps: dict[int, dict[str, float]] = {}
    for tag in sorted({t for run in group for t in run.curves}):
        for step in sorted({s for run in group for s in run.curves.get(tag, {})}):
            if step > 0 and not tag.startswith(CURVES):
                continue
            values = [run.curves[tag][step] for run in group if step in run.curves.get(tag, {})]
            spread = {f"seeds_min/{tag}": min(values), f"seeds_max/{tag}": max(values)}
            steps.setdefault(step, {}).update({tag: fmean(values), **spread})
    return steps


def _common(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The values every row shares (the seed is what differs)."""
    return {k: v for k, v in rows[0].items() if k != "seed" and all(r.get(k) == v for r in rows)}


def _scalars(values: dict[str, float]) -> Summary:
    return Summary(value=[Summary.Value(tag=t, simple_value=v) for t, v in values.items()])


def _bands() -> dict:
    """Custom Scalars: the mean with its min-max band over seeds, per training curve."""
    charts = {tag: ["Margin", [tag, f"seeds_min/{tag}", f"seeds_max/{tag}"]] for tag in BANDS}
    return {"seed aggregates: mean and min-max over seeds": charts}
