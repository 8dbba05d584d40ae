"""End to end through train(): every model x norm x dataset format, outputs, errors, resume."""

import json
from pathlib import Path

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from train import train

MODELS = ["mlp", "cnn", "lstm", "resnet", "rnn", "gru"]
# The recurrent models offer only the norms with a published placement (tested to refuse others).
NORMS_OF = {"lstm": ("none", "layernorm"), "rnn": ("none", "layernorm"), "gru": ("none",)}


@pytest.mark.parametrize("data", ["mnist", pytest.param("cifar10", marks=pytest.mark.slow)])
# Every model without a norm in the fast core; the norms and CIFAR's format in the slow set.
@pytest.mark.parametrize(
    "norm", ["none", *(pytest.param(n, marks=pytest.mark.slow) for n in ("layernorm", "batchnorm"))]
)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_norm_trains(make_cfg, model: str, norm: str, data: str) -> None:
    if norm not in NORMS_OF.get(model, (norm,)):
        pytest.skip(f"{model} offers {', '.join(NORMS_OF[model])} (tested to refuse the others)")
    extra = ["model.depth=8"] if model == "resnet" else []
    record = train(make_cfg(f"model={model}", f"model.norm={norm}", f"data={data}", *extra))
    assert record.status == "finished"
    assert record.steps == 2
    for key in ("train/loss_epoch", "val/acc", "val/loss", "test/acc", "test/loss"):
        assert key in record.metrics and record.metrics[key] == record.metrics[key]


def test_run_folder_is_self_describing(make_cfg, tmp_path: Path) -> None:
    record = train(make_cfg("model=mlp", "init=xavier_uniform", "trainer.log_every_n_steps=1"))
    run = tmp_path / "run"
    assert json.loads((run / "metrics.json").read_text()) == record.to_dict()
    assert {"init=xavier_uniform", "model=mlp"} <= set(record.overrides)
    assert (run / "checkpoints" / "last.ckpt").exists()
    events = EventAccumulator(str(run)).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss_step", "train/acc_step", "val/loss", "val/acc", "test/acc"} <= scalars
    assert "train/lr" in scalars and "train/epoch" in scalars, scalars
    hparams = EventAccumulator(str(run), size_guidance={"tensors": 0}).Reload()
    plugin = hparams.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(plugin)
    start = HParamsPluginData.FromString(plugin["_hparams_/session_start_info"])
    values = start.session_start_info.hparams
    assert values["init"].string_value == "xavier_uniform" and values["model"].string_value == "mlp"
    assert (
        values["init.mode"].string_value == "fan_avg"
        and values["status"].string_value == "finished"
    )
    assert not any("_target_" in name or "dir" in name for name in values)
    end = HParamsPluginData.FromString(plugin["_hparams_/session_end_info"])
    assert end.session_end_info.status == api_pb2.STATUS_SUCCESS
    assert record.hparams["optimizer.lr"] == 0.05 and "val/acc_best" in record.metrics


def test_failed_run_records_its_error(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("model=resnet", "model.depth=9")
    with pytest.raises(ValueError, match="6n\\+2"):
        train(cfg)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "failed" and "model.depth must be 6n+2" in record["error"]


def _step_losses(run: Path) -> pd.Series:
    frame = pd.read_csv(run / "metrics.csv")
    rows = frame.dropna(subset=["train/loss_step"])
    return rows.set_index("step")["train/loss_step"]


def test_resume_continues_the_same_loss_curve(make_cfg, tmp_path: Path) -> None:
    common = [
        "logger=csv",
        "model=cnn",
        "trainer.limit_train_batches=4",
        "trainer.log_every_n_steps=1",
        "scheduler=multistep",
    ]
    straight = tmp_path / "straight"
    train(make_cfg(*common, "trainer.max_epochs=2", output_dir=straight))
    first = tmp_path / "first"
    interrupt = "+callbacks.interrupt._target_=tests.helpers.StopAfterFirstEpoch"
    train(make_cfg(*common, "trainer.max_epochs=2", interrupt, output_dir=first))
    assert len(_step_losses(first)) == 4
    resumed = tmp_path / "resumed"
    ckpt = first / "checkpoints" / "last.ckpt"
    train(make_cfg(*common, "trainer.max_epochs=2", f"ckpt_path={ckpt}", output_dir=resumed))
    expected, got = _step_losses(straight), _step_losses(resumed)
    assert len(got) == 4 and got.index.min() >= 4
    pd.testing.assert_series_equal(got, expected.loc[got.index], rtol=1e-5)
