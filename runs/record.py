"""What a run was and what it gave: one typed record, written as the run's ``metrics.json`` and
read back by everything that compares runs (the sweep report, HParams, dashboards, the seed
runner)."""

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from lightning_utilities.core.rank_zero import rank_zero_only  # lightning sets its rank

SCHEMA_VERSION = 2  # 1: the dict train.py wrote before the record class (read as well)
RECORD_FILE = "metrics.json"
Status = Literal["running", "finished", "diverged", "failed", "missing"]
Value = str | int | float | bool  # a knob's value: what an HParams cell can hold


@dataclass
class DivergenceInfo:
    """Where a run diverged: the first bad step, the first watched layer out of bounds then
    (None when none was, or it cannot be known), and the loss at that step."""

    step: int
    layer: str | None
    loss: float | None


@dataclass
class RunRecord:
    """One run, from its start (status ``running``) to its end.

    Attributes:
        name: the run's folder name: what its sweep varies (``init=lsuv,seed=2``); for a
            single run its start time (its overrides name the folder above).
        output_dir: the run's folder.
        overrides: its command-line overrides.
        varied: the keys among them that its sweep varies (empty for a single run).
        choices: the chosen file of each config group (``init: lsuv``).
        init: the init's name (its file in ``conf/init``).
        init_knobs: the init's resolved settings (``gain``, ``std``...), whatever the init.
        knobs: the model's, optimizer's and data's settings that tell runs apart
            (``model.depth``, ``optimizer.lr``...).
        seed: the run's seed.
        status: running, finished, diverged, failed; ``missing`` for a sweep job that never
            wrote a record.
        metrics: final values by key (``val/acc``); None where not finite.
        epochs: epochs run; steps: optimizer steps run.
        seconds: wall seconds (a population member: its share of the population's).
        error: a failed run's error, one line.
        divergence: where a diverged run stopped.
        layers: each watched output's tag (``000.net.layers.0.0``): its module's ``type``
            (``Linear``) and ``kind`` (layer, activation or block output).
        population: for a member of a population, its size and total seconds.
    """

    name: str = ""
    output_dir: str = ""
    overrides: list[str] = field(default_factory=list)
    varied: list[str] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)
    init: str = ""
    init_knobs: dict[str, Value] = field(default_factory=dict)
    knobs: dict[str, Value] = field(default_factory=dict)
    seed: int | None = None
    status: Status = "running"
    metrics: dict[str, float | None] = field(default_factory=dict)
    epochs: int | None = None
    steps: int | None = None
    seconds: float | None = None
    error: str | None = None
    divergence: DivergenceInfo | None = None
    layers: dict[str, dict[str, str]] = field(default_factory=dict)
    population: dict[str, float] | None = None
    schema: int = SCHEMA_VERSION

    @property
    def hparams(self) -> dict[str, Value]:
        """The run's row in TensorBoard's HParams tab: each group's choice, the init's knobs
        (``init.<knob>``), the other knobs, the seed and the status."""
        row: dict[str, Value] = dict(self.choices)
        row.update({f"init.{k}": v for k, v in self.init_knobs.items()})
        row.update(self.knobs)
        if self.seed is not None:
            row["seed"] = self.seed
        row["status"] = self.status
        return row

    def metric(self, key: str) -> float | None:
        """A final metric, None where missing or not finite."""
        value = self.metrics.get(key)
        return value if value is not None and math.isfinite(value) else None

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form: plain values, NaN and Inf (a diverged run's loss) as None."""
        return finite(asdict(self))

    def to_json(self) -> str:
        """Strict JSON (``allow_nan=False``): what ``jq`` and every JSON parser read."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def saved(self) -> "RunRecord":
        """The record as its ``metrics.json`` holds it (NaN and Inf as None)."""
        return RunRecord.from_dict(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        """A record from its JSON form; unknown keys (a newer schema's) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("divergence") is not None:
            values["divergence"] = DivergenceInfo(**values["divergence"])
        values.setdefault("schema", 1)
        values.setdefault("init", values.get("choices", {}).get("init", ""))
        return cls(**values)

    @classmethod
    def read(cls, path: Path) -> "RunRecord":
        return cls.from_dict(json.loads(Path(path).read_text()))

    @rank_zero_only  # one metrics.json per run, also under DDP
    def write(self, path: Path | None = None) -> None:
        """To ``path``, by default ``<output_dir>/metrics.json``."""
        target = Path(path) if path is not None else Path(self.output_dir) / RECORD_FILE
        target.write_text(self.to_json())


def finite(value: Any) -> Any:
    """NaN and Inf become None (JSON null), in nested dicts and lists too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
