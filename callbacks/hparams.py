"""TensorBoard's HParams tab, declared so that runs compare there.

Why by hand: Lightning's ``log_hyperparams`` declares each run's own columns from its flattened
config (``init/_target_``, paths, ``_partial_``) and marks every run a success, and TensorBoard
shows the columns of whichever declaration it finds first ("arbitrarily pick the first one",
its ``backend_context.py``). Here every declaration is the same, ``COLUMNS`` and ``METRICS``,
whoever writes it (a single run, or a sweep for all its runs), so any logdir, one sweep or all
of ``logs/``, shows the same table; each run writes only its values and its status. No column
declares discrete values: those would be one declaration's, and TensorBoard's filters would hide
the rows of every other value under a logdir holding several. Built from the plugin's protos,
as ``torch.utils.tensorboard.summary.hparams`` does, which cannot declare a run's status.
"""

from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2
from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

# The metrics the HParams tab shows, in its column order: (tag, display name). The first one
# colours the parallel-coordinates view.
METRICS = (
    ("val/acc", "val acc"),
    ("val/acc_best", "best val acc"),
    ("test/acc", "test acc"),
    ("val/loss", "val loss"),
    ("train/loss_epoch", "train loss"),
    ("train/diverged_step", "diverged at step"),
)
TEXT, NUMBER, FLAG = str, float, bool
# The columns: each group's chosen file, then the keys that tell two runs apart (names, paths
# and wiring left out), the seed and the status. A run without a key leaves its cell empty.
COLUMNS: dict[str, type] = {
    "init": TEXT, "model": TEXT, "data": TEXT, "optimizer": TEXT, "scheduler": TEXT,
    "parametrization": TEXT,
    "init.mode": TEXT, "init.distribution": TEXT, "init.gain": NUMBER, "init.std": NUMBER,
    "init.mean": NUMBER, "init.value": NUMBER, "init.low": NUMBER, "init.high": NUMBER,
    "init.bias": NUMBER, "init.forget_bias": NUMBER, "init.recurrent_orthogonal": FLAG,
    "init.zero_init_residual": FLAG, "init.parametrize": FLAG, "init.tolerance": NUMBER,
    "init.max_iters": NUMBER, "init.center": FLAG,
    "model.norm": TEXT, "model.activation": TEXT, "model.depth": NUMBER, "model.width": NUMBER,
    "model.channels": TEXT, "model.convs_per_stage": NUMBER, "model.hidden": NUMBER,
    "model.hidden_size": NUMBER, "model.num_layers": NUMBER,
    "optimizer.lr": NUMBER, "optimizer.momentum": NUMBER, "optimizer.weight_decay": NUMBER,
    "data.batch_size": NUMBER, "data.augment": FLAG,
    "seed": NUMBER, "status": TEXT,
}  # fmt: skip
DATA_TYPES = {TEXT: "DATA_TYPE_STRING", NUMBER: "DATA_TYPE_FLOAT64", FLAG: "DATA_TYPE_BOOL"}
# The columns the HParams table shows at first: TensorBoard's page shows the first five marked
# ``differs`` (then the rest in name order, unticked); these are what a comparison varies most.
SHOWN = ("init", "model", "optimizer.lr", "seed", "status")
STATUS = {
    "finished": api_pb2.STATUS_SUCCESS,
    "diverged": api_pb2.STATUS_FAILURE,
    "failed": api_pb2.STATUS_FAILURE,
}
Value = str | float | bool


def run_hparams(cfg: DictConfig, choices: Mapping[str, str], status: str) -> dict[str, Value]:
    """The run's values of ``COLUMNS``: each group's chosen file (``init: lsuv``), its knobs
    (``init.gain``, ``model.depth``, ``optimizer.lr``...), the seed and the run's status."""
    values: dict[str, Value] = {"status": status}
    for name, kind in COLUMNS.items():
        group, _, key = name.partition(".")
        if not key:
            value = choices.get(group) if group != "seed" else cfg.get("seed")
        else:
            node = cfg.get(group) or {}
            value = node.get(key) if key in node else None
        if value is not None and name != "status":
            values[name] = _as(kind, value)
    return values


def _as(kind: type, value: Any) -> Value:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value)
    return kind(value) if kind is not TEXT or isinstance(value, str) else str(value)


def session_summaries(hparams: Mapping[str, Value], status: str) -> list[Summary]:
    """A run's HParams events: the declaration, its values (session start) and how it ended
    (diverged and failed runs are failures)."""
    start = plugin_data_pb2.SessionStartInfo()
    for name, value in hparams.items():
        _set(start.hparams[name], value)
    end = plugin_data_pb2.SessionEndInfo(status=STATUS.get(status, api_pb2.STATUS_UNKNOWN))
    return [
        experiment_summary(),
        _summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
        _summary(metadata.SESSION_END_INFO_TAG, session_end_info=end),
    ]


def experiment_summary() -> Summary:
    """The declaration: ``COLUMNS`` with their types, and ``METRICS``. The same for every run
    and sweep (see the module's docstring)."""
    infos = [
        api_pb2.HParamInfo(
            name=name, type=api_pb2.DataType.Value(DATA_TYPES[kind]), differs=name in SHOWN
        )
        for name, kind in COLUMNS.items()
    ]
    metrics = [
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=display)
        for tag, display in METRICS
    ]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics)
    return _summary(metadata.EXPERIMENT_TAG, experiment=experiment)


def _set(target: struct_pb2.Value, value: Value) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, float):
        target.number_value = value
    else:
        target.string_value = str(value)


def _summary(tag: str, **content: Any) -> Summary:
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
    plugin = SummaryMetadata.PluginData(
        plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString()
    )
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])
