"""TensorBoard's HParams tab, declared so that a sweep's runs can be compared there.

Why by hand: Lightning's ``log_hyperparams`` writes every run's own experiment declaration from
its flattened config (``init/_target_``, paths, ``_partial_``) and marks every run a success;
TensorBoard then takes one run's column set for all. Here each run writes only its values and
its status (a session), and the experiment (the columns, their discrete values, the metrics) is
declared once: in the run's folder for a single run, in the sweep's folder for a sweep, from
every run's ``metrics.json`` (``benchmarks.report``). Built from the plugin's own protos, as
``torch.utils.tensorboard.summary.hparams`` does, which cannot declare a status or a domain
for a column some runs lack.
"""

from collections.abc import Iterable, Mapping
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
    ("diverged/step", "diverged at step"),
)
# Of each config group, the keys that tell two runs apart; names, paths and wiring are left out.
KNOBS = {
    "init": ("mode", "distribution", "gain", "std", "value", "tolerance", "center"),
    "model": ("norm", "activation", "depth", "width", "channels", "hidden", "hidden_size"),
    "optimizer": ("lr", "momentum", "weight_decay"),
    "data": ("batch_size", "augment"),
}
STATUS = {
    "finished": api_pb2.STATUS_SUCCESS,
    "diverged": api_pb2.STATUS_FAILURE,
    "failed": api_pb2.STATUS_FAILURE,
}
Value = str | float | bool


def run_hparams(cfg: DictConfig, choices: Mapping[str, str], status: str) -> dict[str, Value]:
    """The run's HParams columns: each group's chosen file (``init: lsuv``), the knobs that
    distinguish runs (``init.gain``, ``model.depth``, ``optimizer.lr``...), the seed and the
    run's status."""
    values: dict[str, Value] = {}
    for group, keys in KNOBS.items():
        values[group] = choices.get(group, "?")
        node = cfg.get(group) or {}
        for key in keys:
            value = node.get(key) if key in node else None
            if value is not None:
                values[f"{group}.{key}"] = _plain(value)
    values["seed"] = float(cfg.seed)
    values["status"] = status
    return values


def _plain(value: Any) -> Value:
    if OmegaConf.is_config(value):
        return str(OmegaConf.to_container(value))
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def session_summaries(hparams: Mapping[str, Value], status: str) -> list[Summary]:
    """A run's two HParams events: its values (session start) and how it ended."""
    start = plugin_data_pb2.SessionStartInfo()
    for name, value in hparams.items():
        _set(start.hparams[name], value)
    end = plugin_data_pb2.SessionEndInfo(status=STATUS.get(status, api_pb2.STATUS_UNKNOWN))
    return [
        _summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
        _summary(metadata.SESSION_END_INFO_TAG, session_end_info=end),
    ]


def experiment_summary(runs: Iterable[Mapping[str, Value]]) -> Summary:
    """The experiment: one column per name any run has, with every value seen as its discrete
    domain, and the metrics of ``METRICS``."""
    domains: dict[str, dict[Value, None]] = {}
    for hparams in runs:
        for name, value in hparams.items():
            domains.setdefault(name, {})[value] = None
    infos = [_info(name, list(values)) for name, values in domains.items()]
    metrics = [
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=display)
        for tag, display in METRICS
    ]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics)
    return _summary(metadata.EXPERIMENT_TAG, experiment=experiment)


def _info(name: str, values: list[Value]) -> api_pb2.HParamInfo:
    kinds = {type(v) for v in values}
    if len(kinds) > 1:  # mixed types in one column (gain 1.0 in one run, null in another)
        kinds, values = {str}, [str(v) for v in values]
    kind = {bool: "DATA_TYPE_BOOL", float: "DATA_TYPE_FLOAT64"}.get(kinds.pop(), "DATA_TYPE_STRING")
    domain = struct_pb2.ListValue()
    for value in sorted(values, key=lambda v: (str(type(v)), v)):
        _set(domain.values.add(), value)
    return api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(kind), domain_discrete=domain)


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
