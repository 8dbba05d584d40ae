"""The run record: what metrics.json is, written and read by the same class."""

import json
import math
from pathlib import Path

from runs.record import SCHEMA_VERSION, DivergenceInfo, RunRecord


def _diverged() -> RunRecord:
    return RunRecord(
        name="init=normal_large,seed=1",
        output_dir="/runs/x",
        overrides=["init=normal_large", "seed=1"],
        varied=["init", "seed"],
        choices={"init": "normal_large", "model": "mlp"},
        init="normal_large",
        init_knobs={"std": 1.0},
        knobs={"model.depth": 4.0, "optimizer.lr": 0.05},
        seed=1,
        status="diverged",
        metrics={"train/loss_epoch": math.nan, "val/acc": 0.1},
        epochs=0,
        steps=3,
        seconds=1.5,
        divergence=DivergenceInfo(step=2, layer="net.layers.1.0", loss=math.inf),
        layers={"000.net.layers.0.0": {"type": "Linear", "kind": "layer output"}},
    )


def test_metrics_json_round_trips_through_the_record(tmp_path: Path) -> None:
    record = _diverged()
    record.write(tmp_path / "metrics.json")
    text = (tmp_path / "metrics.json").read_text()
    json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # strict
    read = RunRecord.read(tmp_path / "metrics.json")
    assert read == record.saved() and read.schema == SCHEMA_VERSION
    assert read.metrics["train/loss_epoch"] is None and read.divergence.loss is None
    assert read.divergence == DivergenceInfo(2, "net.layers.1.0", None)
    assert read.metric("val/acc") == 0.1 and read.metric("train/loss_epoch") is None
    assert RunRecord.read(tmp_path / "metrics.json").to_json() == text


def test_hparams_row_comes_from_the_record() -> None:
    row = _diverged().hparams
    assert row == {
        "init": "normal_large",
        "model": "mlp",
        "init.std": 1.0,
        "model.depth": 4.0,
        "optimizer.lr": 0.05,
        "seed": 1,
        "status": "diverged",
    }


def test_a_record_of_the_first_schema_is_read() -> None:
    """metrics.json as train.py wrote it before the record class: no init, a dict of hparams."""
    old = {
        "status": "finished",
        "overrides": ["init=lsuv"],
        "choices": {"init": "lsuv"},
        "seed": 0,
        "metrics": {"val/acc": 0.9},
        "hparams": {"init": "lsuv"},
        "divergence": None,
    }
    record = RunRecord.from_dict(old)
    assert record.init == "lsuv" and record.schema == 1 and record.metric("val/acc") == 0.9
