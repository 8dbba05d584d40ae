"""What a run's TensorBoard shows: tag order, the Custom Scalars layout, the figures."""

import re
from pathlib import Path

import pytest
import torch
from matplotlib.colors import LogNorm
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2

from callbacks import LayerStats
from callbacks.depth_figures import DEPTH_STATS, depth_figure
from callbacks.figures import colorful_dimension_figure, signal_propagation_figure
from callbacks.watched import STAT_PREFIX, parse_stat_tag, stat_tag
from tests.support import FAST
from train import build, compose

MIN_WIDTH = 900  # px: a hundred layer names stay legible


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> tuple:
    """One tiny MLP run with every statistic, and its event files."""
    folder = tmp_path_factory.mktemp("dash") / "run"
    cfg = compose(
        f"data.root={data_root}",
        *FAST,
        "stats=full",
        "stats.every_n_steps=1",
        "trainer.log_every_n_steps=1",
        "model.depth=3",
        output_dir=folder,
    )
    trainer, module, datamodule = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    stats = next(c for c in trainer.callbacks if isinstance(c, LayerStats))
    events = EventAccumulator(str(folder), size_guidance={"images": 0, "tensors": 0}).Reload()
    return events, stats


def _tensorboard_order(tag: str) -> tuple:
    """TensorBoard's tag order (``compareTagNames`` in its frontend), for names without digit
    runs: digits and '/' before any other character, then by character code. Time Series and
    Scalars list a group (the part before the first '/') where its first tag falls."""
    return tuple((not (c.isdigit() or c == "/"), c) for c in tag)


def test_training_metrics_come_before_every_layer_statistic(run) -> None:
    events, _ = run
    tags = events.Tags()
    every = tags["scalars"] + tags["images"] + tags["histograms"]
    groups = list(dict.fromkeys(t.split("/", 1)[0] for t in sorted(every, key=_tensorboard_order)))
    first_layer_group = min(i for i, g in enumerate(groups) if g.startswith(STAT_PREFIX))
    assert groups[:first_layer_group] == ["train", "val"], groups  # epoch and lr in train/
    assert {"train/lr", "train/epoch"} <= set(every) and "epoch" not in every
    assert all(g.startswith(STAT_PREFIX) for g in groups[first_layer_group:]), groups


def test_statistics_are_grouped_by_statistic_then_depth(run) -> None:
    events, stats = run
    parsed = {parse_stat_tag(t) for t in events.Tags()["scalars"]} - {None}
    assert parsed == {(r.stat, r.layer) for r in stats.table}
    assert "watched.act_std/000.net.layers.0.0" in events.Tags()["scalars"]
    assert parse_stat_tag("train/loss_step") is None


def test_layout_reads_training_first_then_one_chart_per_statistic(run) -> None:
    events, stats = run
    proto = events.Tensors("custom_scalars__config__")[0].tensor_proto
    layout = layout_pb2.Layout.FromString(proto.string_val[0])
    titles = [c.title for c in layout.category]
    assert titles == ["training", "activations", "activation gradients", "parameters"]
    assert [c.closed for c in layout.category] == [False, False, False, True]
    scalars = events.Tags()["scalars"]
    charted = set()
    for category in layout.category:
        for chart in category.chart:
            matched = {t for t in scalars if any(re.search(r, t) for r in chart.multiline.tag)}
            assert matched, chart.title
            charted |= matched
            if category.title != "training":  # every layer of that statistic, nothing else
                assert {parse_stat_tag(t)[0] for t in matched} == {chart.title}
    training = {c.title: c for c in layout.category}["training"]
    assert [c.title for c in training.chart] == ["loss", "accuracy", "learning rate"]
    assert {"train/loss_step", "val/acc", "train/lr", "train/epoch"} <= charted | set(scalars)
    assert {t for t in scalars if parse_stat_tag(t)} <= charted


def test_figures_are_written_wide_enough_and_name_the_init(run) -> None:
    events, stats = run
    assert stats.title == "kaiming_normal"  # from the config: ${hydra:runtime.choices.init}
    images = events.Tags()["images"]
    expected = [stat_tag("by_depth", s) for s in ("signal_propagation", *DEPTH_STATS)]
    assert set(expected) <= set(images)
    colorful = [t for t in images if t.startswith(stat_tag("colorful_dimension", ""))]
    assert len(colorful) == 7  # 3 x (Linear, ReLU) + head
    for tag in expected + colorful:
        image = events.Images(tag)[-1]
        assert image.width >= MIN_WIDTH and image.height >= 300, (tag, image.width)


def test_signal_figure_separates_layer_and_activation_outputs() -> None:
    layers = ["000.net.layers.0.0", "001.net.layers.0.2", "002.net.head"]
    kinds = ["layer output", "activation output", "layer output"]
    scalars = {(s, t): 1.0 + i for i, t in enumerate(layers) for s in ("act_std", "act_grad_std")}
    labels = {t: f"name{i}" for i, t in enumerate(layers)}
    fig = signal_propagation_figure(scalars, labels, dict(zip(layers, kinds)), "lsuv")
    (ax,) = fig.axes
    lines = {line.get_label(): list(line.get_xdata()) for line in ax.get_lines()}
    assert lines["activation std, layer output"] == [0, 2]
    assert lines["activation std, activation output"] == [1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["name0", "name1", "name2"]
    assert list(ax.get_xticks()) == [0, 1, 2]
    assert ax.get_title().endswith("init=lsuv") and ax.get_ylabel() and ax.get_xlabel()


def test_depth_figure_uses_log_scales_where_the_statistic_spans_decades() -> None:
    layers = [f"00{i}.net.layers.{i}.0" for i in range(4)]
    values = {(step, t): 10.0 ** (i + step) for step in (0, 5) for i, t in enumerate(layers)}
    series = dict.fromkeys(layers, "layer output")
    fig = depth_figure("act_std", values, {}, series, "normal_large")
    profile, heatmap = fig.axes[:2]
    assert profile.get_yscale() == "log" and isinstance(heatmap.images[0].norm, LogNorm)
    assert fig.get_suptitle() == "act_std against depth: init=normal_large"
    flat = {k: 0.5 for k in values}
    fig = depth_figure("act_dead_frac", flat, {}, series)
    assert fig.axes[0].get_yscale() == "linear"
    assert not isinstance(fig.axes[1].images[0].norm, LogNorm)
    assert fig.get_figwidth() * fig.dpi >= MIN_WIDTH


def test_colorful_dimension_puts_the_largest_values_at_the_top() -> None:
    counts = torch.zeros(8, 3)
    counts[-1] = 5.0  # every value in the last bin, the largest
    fig = colorful_dimension_figure(counts, [0, 10, 20], 5.0, "layers.0.2 ReLU")
    ax = fig.axes[0]
    image = ax.images[0]
    assert image.origin == "lower" and image.get_extent() == [-5, 25, -5.0, 5.0]
    data = image.get_array()
    assert (data[-1] > 0).all() and (data[:-1] == 0).all()  # row -1 is drawn at the top
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "value"
    assert len(fig.axes) == 2  # the colour bar


@pytest.mark.slow
def test_colorful_images_follow_their_period_between_logging_steps(make_cfg, tmp_path) -> None:
    """Logging every 2 steps, images every 3: drawn at the first logging step from each
    multiple of 3 on (0, 4) and at the end (6)."""
    cfg = make_cfg(
        "stats=full",
        "stats.every_n_steps=2",
        "stats.images_every_n_steps=3",
        "trainer.limit_train_batches=6",
        "data.val_size=8",
    )
    trainer, module, datamodule = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0}).Reload()
    tag = next(t for t in events.Tags()["images"] if "colorful_dimension" in t)
    assert [e.step for e in events.Images(tag)] == [0, 4, 6]
