"""TensorBoard's HParams tab, declared so that runs compare there.

Why a declaration of our own: Lightning's ``log_hyperparams`` declares each run's own columns
from its flattened config (``init/_target_``, paths, ``_partial_``) and marks every run a
success, and TensorBoard shows the columns of whichever declaration it finds first
("arbitrarily pick the first one", its ``backend_context.py``). Here every declaration holds
the same columns whoever writes it (a single run, or a sweep): each group's choice, the knobs
of every init in ``conf/init`` plus those of the runs at hand, the model's, optimizer's and
data's knobs, the seed and the status; each run writes only its values and its status. No
column declares discrete values: those would be one declaration's, and TensorBoard's filters
would hide the rows of every other value under a logdir holding several.

Written with TensorBoard's public ``summary_v2`` (``hparams_config_pb``, ``hparams_pb``). Two
things it cannot say are set on its output: a column's type without a domain and which
columns show first (``differs``); and a session's end status, which only the TensorFlow-bound
``summary.session_end_pb`` writes, is the plugin's ``SessionEndInfo`` proto.
"""

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path

from omegaconf import OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2

from runs.compose import CONFIG_DIR
from runs.knobs import GROUP_KNOBS, as_value, init_knobs
from runs.record import RunRecord, Value

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
CHOICES = ("init", "model", "data", "optimizer", "scheduler", "parametrization")
DATA_TYPES = {str: api_pb2.DATA_TYPE_STRING, float: api_pb2.DATA_TYPE_FLOAT64}
DATA_TYPES[bool] = api_pb2.DATA_TYPE_BOOL
# The columns the HParams table shows at first: TensorBoard's page shows the first five marked
# ``differs`` (then the rest in name order, unticked); these are what a comparison varies most.
SHOWN = ("init", "model", "optimizer.lr", "seed", "status")
STATUS = {
    "finished": api_pb2.STATUS_SUCCESS,
    "diverged": api_pb2.STATUS_FAILURE,
    "failed": api_pb2.STATUS_FAILURE,
}
INIT_DIR = CONFIG_DIR / "init"


def columns(records: Iterable[RunRecord] = ()) -> dict[str, type]:
    """Every column and its type: the choices, the init knobs (of ``conf/init``'s files and
    of ``records``), the other groups' knobs, the seed and the status."""
    found: dict[str, type] = {name: str for name in CHOICES}
    knobs: dict[str, set[type]] = {}
    for name, value in [*_catalog_knobs(), *_record_knobs(records)]:
        kind = float if type(value) is int else type(value)  # one number type: FLOAT64
        knobs.setdefault(f"init.{name}", set()).add(kind)
    for name, kinds in sorted(knobs.items()):
        found[name] = kinds.pop() if len(kinds) == 1 else str
    for group, keys in GROUP_KNOBS.items():
        found.update({f"{group}.{key}": kind for key, kind in keys.items()})
    return found | {"seed": float, "status": str}


@functools.cache  # the files do not change while a process runs
def _catalog_knobs() -> tuple[tuple[str, Value], ...]:
    """The knobs every init file in ``conf/init`` sets (its own keys, not its defaults'; an
    interpolated one is known only in a run)."""
    knobs = []
    for path in sorted(INIT_DIR.glob("*.yaml")):
        knobs += init_knobs(OmegaConf.load(path), resolve=False).items()
    return tuple(knobs)


def _record_knobs(records: Iterable[RunRecord]) -> list[tuple[str, Value]]:
    return [item for record in records for item in record.init_knobs.items()]


def session_summaries(record: RunRecord) -> list[Summary]:
    """A run's HParams events: the declaration, its values (session start) and how it ended
    (diverged and failed runs are failures)."""
    return [
        experiment_summary([record]),
        session_start(typed(record.hparams, columns([record])), trial_name(record)),
        session_end(record.status),
    ]


def trial_name(record: RunRecord) -> str:
    """The run's name in the HParams table (its Trial ID): a sweep's job folder
    (``init=lsuv,seed=2``), or a single run's overrides and time (``model=cnn/2026-...``)."""
    folder = Path(record.output_dir or record.name)
    return folder.name if record.varied else "/".join(folder.parts[-2:])


def typed(hparams: Mapping[str, Value], kinds: Mapping[str, type]) -> dict[str, Value]:
    """The values of the declared columns, each as its column's type (a knob that is a number
    in one init and text in another is a text column: its numbers are written as text); the
    other choices (``paths``, ``logger``...) tell no runs apart and are left out."""
    return {name: as_value(v, kinds[name]) for name, v in hparams.items() if name in kinds}


def experiment_summary(records: Iterable[RunRecord] = ()) -> Summary:
    """The declaration: ``columns`` with their types, and ``METRICS``."""
    kinds = columns(records)
    hparams = [summary_v2.HParam(name) for name in kinds]
    metrics = [summary_v2.Metric(tag, display_name=name) for tag, name in METRICS]
    summary = summary_v2.hparams_config_pb(hparams, metrics)
    data = _plugin_data(summary)
    for info in data.experiment.hparam_infos:
        info.type = DATA_TYPES[kinds[info.name]]
        info.differs = info.name in SHOWN
    return _with_plugin_data(summary, data)


def session_start(hparams: Mapping[str, Value], trial: str) -> Summary:
    """A run's values (``RunRecord.hparams``), as one session of the HParams tab."""
    return summary_v2.hparams_pb(dict(hparams), trial_id=trial)


def session_end(status: str) -> Summary:
    """How a run ended: success, or failure for a diverged or failed run."""
    end = plugin_data_pb2.SessionEndInfo(status=STATUS.get(status, api_pb2.STATUS_UNKNOWN))
    data = plugin_data_pb2.HParamsPluginData(
        version=metadata.PLUGIN_DATA_VERSION, session_end_info=end
    )
    plugin = SummaryMetadata.PluginData(
        plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString()
    )
    value = Summary.Value(
        tag=metadata.SESSION_END_INFO_TAG, metadata=SummaryMetadata(plugin_data=plugin)
    )
    return Summary(value=[value])


def _plugin_data(summary: Summary) -> plugin_data_pb2.HParamsPluginData:
    content = summary.value[0].metadata.plugin_data.content
    return plugin_data_pb2.HParamsPluginData.FromString(content)


def _with_plugin_data(summary: Summary, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    summary.value[0].metadata.plugin_data.content = data.SerializeToString()
    return summary
