"""What a run writes to TensorBoard besides its scalars: the Custom Scalars layout, and the
figures drawn when training ends."""

import re
from collections.abc import Iterable, Mapping

import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.custom_scalar import layout_pb2
from torch import Tensor

from callbacks.depth_figures import DEPTH_STATS, depth_figure
from callbacks.figures import signal_propagation_figure
from callbacks.watched import stat_tag

# The first category: what a user reads first. A chart shows every tag its regexes match, for
# every run (TensorBoard colours by run and tag, with a legend under the chart).
TRAINING_CATEGORY = "training"
TRAINING = {
    "loss": [r"^train/loss_(step|epoch)$", r"^val/loss$", r"^test/loss$"],
    "accuracy": [r"^train/acc_(step|epoch)$", r"^val/acc(_best)?$", r"^test/acc$"],
    "learning rate": [r"^train/lr$", r"^lr-"],  # ours, or LearningRateMonitor's default name
}
# Then one category per family of statistics, one chart per statistic with every layer on it;
# the parameter category starts folded (it has the most charts).
FAMILIES = (("activations", "act_"), ("activation gradients", "act_grad_"), ("parameters", ""))
FOLDED = ("parameters",)
# The figures' group: "by_depth" sorts before "colorful_dimension" in the Images dashboard.
SIGNAL_TAG = stat_tag("by_depth", "signal_propagation")


def tensorboard_writers(loggers: Iterable[Logger]) -> list:
    """The SummaryWriters of a run's TensorBoard loggers (histograms, images, figures)."""
    return [lg.experiment for lg in loggers if isinstance(lg, TensorBoardLogger)]


@rank_zero_only  # other ranks' writers are Lightning's no-op stand-ins
def write_summary(writer, summary: Summary, step: int) -> None:
    """A summary proto as one event (what ``add_scalar`` and friends cannot write: margin
    charts' layouts, HParams sessions, many scalars in one event)."""
    writer.file_writer.add_summary(summary, step)


def write_histogram(writer, tag: str, counts: Tensor, limit: float, step: int) -> None:
    """Counts over the edges ``linspace(-limit, limit, len(counts) + 1)`` as a histogram."""
    edges = torch.linspace(-limit, limit, len(counts) + 1)
    centres = (edges[1:] + edges[:-1]) / 2
    writer.add_histogram_raw(
        tag,
        min=-limit,
        max=limit,
        num=counts.sum().item(),
        sum=(counts * centres).sum().item(),
        sum_squares=(counts * centres.square()).sum().item(),
        bucket_limits=edges[1:].tolist(),
        bucket_counts=counts.tolist(),
        global_step=step,
    )


def family(stat: str) -> str:
    """The category of a statistic: the longest matching prefix wins (act_grad_ over act_)."""
    matches = [(len(prefix), name) for name, prefix in FAMILIES if stat.startswith(prefix)]
    return max(matches)[1]


def layout(stats: list[str]) -> layout_pb2.Layout:
    """Training first, then one chart per statistic (``stats``), grouped by family."""
    categories = [_category(TRAINING_CATEGORY, TRAINING)]
    for name, _ in FAMILIES:
        charts = {s: [f"^{re.escape(stat_tag(s, ''))}"] for s in stats if family(s) == name}
        if charts:
            categories.append(_category(name, charts, closed=name in FOLDED))
    return layout_pb2.Layout(category=categories)


def _category(title: str, charts: Mapping[str, list[str]], closed: bool = False):
    content = layout_pb2.MultilineChartContent
    chart = [layout_pb2.Chart(title=t, multiline=content(tag=tags)) for t, tags in charts.items()]
    return layout_pb2.Category(title=title, chart=chart, closed=closed)


def layout_summary(layout: layout_pb2.Layout) -> Summary:
    """A layout as the summary the custom-scalars plugin reads (what torch's
    ``add_custom_scalars`` writes, which cannot fold a category or draw a margin chart)."""
    tensor = TensorProto(
        dtype="DT_STRING",
        string_val=[layout.SerializeToString()],
        tensor_shape=TensorShapeProto(),
    )
    plugin = SummaryMetadata.PluginData(plugin_name="custom_scalars")
    metadata = SummaryMetadata(plugin_data=plugin)
    value = Summary.Value(tag="custom_scalars__config__", tensor=tensor, metadata=metadata)
    return Summary(value=[value])


def end_figures(
    table: list, labels: Mapping[str, str], series: Mapping[str, str], title: str | None
) -> dict[str, object]:
    """The step-0 signal-propagation figure and one depth figure per statistic of
    ``DEPTH_STATS`` that was logged, by image tag, from ``LayerStats.table`` rows."""
    step0 = {(r.stat, r.layer): r.value for r in table if r.step == 0}
    figures = {}
    if any(stat == "act_std" for stat, _ in step0):
        figures[SIGNAL_TAG] = signal_propagation_figure(step0, labels, series, title)
    for stat in DEPTH_STATS:
        values = {(r.step, r.layer): r.value for r in table if r.stat == stat}
        if values:
            figures[stat_tag("by_depth", stat)] = depth_figure(stat, values, labels, series, title)
    return figures
