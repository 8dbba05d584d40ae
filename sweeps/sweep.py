"""Read a sweep folder's runs from their own files: ``metrics.json`` and TensorBoard events.

Collect first, present second: this module only reads; ``sweeps.report`` presents.
"""

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# Scalars only: histograms and images are not needed and would slow the read down.
SIZE_GUIDANCE = {"scalars": 0, "histograms": 1, "images": 1, "tensors": 1, "audio": 1}


@dataclass
class Run:
    """One run folder of a sweep: its record (``metrics.json``) and its scalar curves."""

    folder: Path
    name: str  # the folder, relative to the sweep's
    record: dict
    curves: dict[str, dict[int, float]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """finished, diverged, failed; ``incomplete`` for a run still marked running (killed)
        and ``missing`` for a folder without metrics.json."""
        status = self.record.get("status", "missing")
        return "incomplete" if status == "running" else status

    @property
    def init(self) -> str:
        return self.record.get("choices", {}).get("init", "?")

    def metric(self, key: str) -> float | None:
        value = self.record.get("metrics", {}).get(key)
        return value if value is not None and math.isfinite(value) else None

    def first_step_reaching(self, key: str, threshold: float) -> int | None:
        """The first logged step at which ``key`` was >= ``threshold``."""
        return next(
            (s for s, v in sorted(self.curves.get(key, {}).items()) if v >= threshold), None
        )

    def best(self, key: str) -> float | None:
        values = [v for v in self.curves.get(key, {}).values() if math.isfinite(v)]
        return max(values) if values else self.metric(key)


def load_runs(sweep_dir: Path) -> list[Run]:
    """Every job folder under the sweep folder (one with a ``metrics.json`` or a ``.hydra``)."""
    folders = sorted(
        {p.parent for p in sweep_dir.rglob("metrics.json")}
        | {p.parent for p in sweep_dir.rglob(".hydra")}
    )
    return [_load(folder, str(folder.relative_to(sweep_dir))) for folder in folders]


def _load(folder: Path, name: str) -> Run:
    file = folder / "metrics.json"
    record = json.loads(file.read_text()) if file.exists() else {}
    if "overrides" not in record:
        overrides = folder / ".hydra" / "overrides.yaml"
        record["overrides"] = _yaml_list(overrides) if overrides.exists() else []
    return Run(folder, name, record, scalar_curves(folder))


def _yaml_list(path: Path) -> list[str]:
    return [line[2:].strip() for line in path.read_text().splitlines() if line.startswith("- ")]


def scalar_curves(folder: Path) -> dict[str, dict[int, float]]:
    """Every scalar tag of the TensorBoard events in ``folder``: tag -> step -> value."""
    if not any(folder.glob("events.out.tfevents.*")):
        return {}
    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # a line per event file
    events = EventAccumulator(str(folder), size_guidance=SIZE_GUIDANCE).Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def overrides_of(run: Run) -> dict[str, str]:
    """The run's overrides as key -> value, keys without Hydra's ``+``/``++`` prefix."""
    pairs = (o.split("=", 1) for o in run.record.get("overrides", []) if "=" in o)
    return {key.lstrip("+"): value for key, value in pairs}


# Keys that change how a run is carried out, not what it measures: a sweep continued with
# resume=true, moved data or logs, or quieter output is the same experiment.
TECHNICAL = (
    "resume", "ckpt_path", "paths", "data.root", "hydra", "logger", "stats",
    "callbacks.model_checkpoint", "callbacks.lr_monitor", "callbacks.progress_bar",
    "trainer.enable_progress_bar", "trainer.enable_model_summary",
    "trainer.enable_checkpointing", "trainer.log_every_n_steps",
)  # fmt: skip


def is_technical(key: str) -> bool:
    """Whether an override key (``paths.log_dir``, ``hydra/launcher``) is in ``TECHNICAL``."""
    return any(key == t or key.startswith((f"{t}.", f"{t}/")) for t in TECHNICAL)


def varying_keys(runs: list[Run], ignore: tuple[str, ...] = ("seed", "init")) -> list[str]:
    """The override keys whose values differ between runs, minus ``ignore`` and the technical
    keys: the columns of the summary table."""
    values: dict[str, set[str]] = {}
    for run in runs:
        for key, value in overrides_of(run).items():
            values.setdefault(key, set()).add(value)
    for run in runs:  # a key set in some runs only also varies
        for key in values:
            values[key].add(overrides_of(run).get(key, ""))
    return sorted(
        k for k, v in values.items() if len(v) > 1 and k not in ignore and not is_technical(k)
    )


def group_label(run: Run, keys: list[str]) -> str:
    """``model=mlp,model.depth=20``: the run's values of the sweep's varying keys."""
    overrides = overrides_of(run)
    return ",".join(f"{k}={overrides.get(k, '-')}" for k in keys) or "all runs"


def mean_curve(runs: list[Run], tag: str) -> dict[int, float]:
    """Step -> mean over ``runs`` of the tag's values at that step (seeds averaged)."""
    steps: dict[int, list[float]] = {}
    for run in runs:
        for step, value in run.curves.get(tag, {}).items():
            steps.setdefault(step, []).append(value)
    return {step: fmean(values) for step, values in sorted(steps.items())}
