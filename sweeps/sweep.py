"""A sweep folder as one object: its runs' records and curves, and the questions every view of
the sweep asks (which keys vary, the cells and their seeds), answered in one place.

Collect first, present second: this module only reads; ``sweeps.report`` and the others
present.
"""

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from runs.record import RECORD_FILE, RunRecord
from sweeps.keys import as_dict, varying_keys

# Scalars only: histograms and images are not needed and would slow the read down.
SIZE_GUIDANCE = {"scalars": 0, "histograms": 1, "images": 1, "tensors": 1, "audio": 1}
Curves = dict[str, dict[int, float]]  # tag -> step -> value


@dataclass
class SweepRun:
    """One job folder of a sweep: its record and its scalar curves."""

    folder: Path
    name: str  # the folder, relative to the sweep's
    record: RunRecord
    curves: Curves = field(default_factory=dict)

    @property
    def status(self) -> str:
        """finished, diverged, failed; ``incomplete`` for a run still marked running (killed)
        and ``missing`` for a folder without a record."""
        return "incomplete" if self.record.status == "running" else self.record.status

    @property
    def init(self) -> str:
        return self.record.init or "?"

    @property
    def overrides(self) -> dict[str, str]:
        """Its overrides as key -> value, keys without Hydra's ``+``/``++`` prefix."""
        return as_dict(self.record.overrides)

    def metric(self, key: str) -> float | None:
        return self.record.metric(key)

    def first_step_reaching(self, key: str, threshold: float) -> int | None:
        """The first logged step at which ``key`` was >= ``threshold``."""
        curve = sorted(self.curves.get(key, {}).items())
        return next((step for step, value in curve if value >= threshold), None)

    def best(self, key: str) -> float | None:
        values = [v for v in self.curves.get(key, {}).values() if math.isfinite(v)]
        return max(values) if values else self.metric(key)


@dataclass
class Sweep:
    """A sweep folder's runs, in folder order."""

    folder: Path
    runs: list[SweepRun]

    @classmethod
    def load(cls, folder: Path, curves: bool = True) -> "Sweep":
        """Every job folder under ``folder`` (one with a record or a ``.hydra``); with
        ``curves``, each one's scalar curves from its TensorBoard events."""
        recorded = {p.parent for p in folder.rglob(RECORD_FILE)}
        jobs = sorted(recorded | {p.parent for p in folder.rglob(".hydra")})
        runs = [
            SweepRun(
                job,
                str(job.relative_to(folder)),
                _record(job),
                scalar_curves(job) if curves else {},
            )
            for job in jobs
        ]
        return cls(folder, runs)

    def varying(self, ignore: tuple[str, ...] = ("seed", "init")) -> list[str]:
        """The override keys whose values differ between runs, minus ``ignore`` and the
        technical keys (``sweeps.keys.TECHNICAL``), sorted: the columns of the report."""
        jobs = [run.record.overrides for run in self.runs]
        return sorted(varying_keys(jobs, ignore=ignore, technical=False))

    @staticmethod
    def label(run: SweepRun, keys: list[str]) -> str:
        """``model=mlp,model.depth=20``: the run's values of ``keys``."""
        overrides = run.overrides
        return ",".join(f"{k}={overrides.get(k, '-')}" for k in keys) or "all runs"

    def groups(self, ignore: tuple[str, ...] = ("seed",)) -> dict[str, list[SweepRun]]:
        """Label -> runs that differ only in ``ignore`` (by default: the seeds of a cell)."""
        keys = self.varying(ignore)
        found: dict[str, list[SweepRun]] = {}
        for run in self.runs:
            found.setdefault(self.label(run, keys), []).append(run)
        return found

    def cells(self) -> dict[str, dict[str, list[SweepRun]]]:
        """Setting -> init -> its runs: a cell is one init in one setting, over seeds."""
        keys = self.varying()
        table: dict[str, dict[str, list[SweepRun]]] = {}
        for run in self.runs:
            table.setdefault(self.label(run, keys), {}).setdefault(run.init, []).append(run)
        return table


def _record(job: Path) -> RunRecord:
    """The job's record; for a job that never wrote one, a ``missing`` record of what Hydra
    saved of it: its overrides, choices and seed."""
    file = job / RECORD_FILE
    if file.exists():
        return RunRecord.read(file)
    record = RunRecord(name=job.name, output_dir=str(job), status="missing")
    saved = job / ".hydra"
    if (saved / "overrides.yaml").exists():
        record.overrides = [str(o) for o in OmegaConf.load(saved / "overrides.yaml")]
    if (saved / "hydra.yaml").exists():
        choices = OmegaConf.load(saved / "hydra.yaml").hydra.runtime.choices
        record.choices = {
            k: str(v) for k, v in choices.items() if v is not None and not k.startswith("hydra")
        }
        record.init = record.choices.get("init", "")
    if (saved / "config.yaml").exists():
        record.seed = OmegaConf.load(saved / "config.yaml").get("seed")
    return record


def scalar_curves(folder: Path) -> Curves:
    """Every scalar tag of the TensorBoard events in ``folder``: tag -> step -> value."""
    if not any(folder.glob("events.out.tfevents.*")):
        return {}
    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # a line per event file
    events = EventAccumulator(str(folder), size_guidance=SIZE_GUIDANCE).Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def mean_curve(runs: list[SweepRun], tag: str) -> dict[int, float]:
    """Step -> mean over ``runs`` of the tag's values at that step (seeds averaged)."""
    steps: dict[int, list[float]] = {}
    for run in runs:
        for step, value in run.curves.get(tag, {}).items():
            steps.setdefault(step, []).append(value)
    return {step: fmean(values) for step, values in sorted(steps.items())}
