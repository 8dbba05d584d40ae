"""The sweep report's figures: loss curves and step-0 signal propagation, one panel per
setting (the sweep's varying values other than init and seed), one line per init."""

import math
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from callbacks.watched import LAYER_OUTPUT, depth, parse_stat_tag, stat_tag
from sweeps.sweep import Sweep, SweepRun, mean_curve

ACT_STD = stat_tag("act_std", "")  # the prefix of every layer's activation-std tag
MIN_WIDTH_INCHES = 10
DIVERGED = "diverged (where it stopped)"


def _colors(runs: list[SweepRun]) -> dict[str, str]:
    """One color per init, the same in every panel."""
    return {init: f"C{i % 10}" for i, init in enumerate(dict.fromkeys(r.init for r in runs))}


def _panels(sweep: Sweep) -> tuple[Figure, dict[str, tuple]]:
    """One axis per setting (the sweep's cells); for each, its runs grouped by init."""
    groups = sweep.cells()
    ncols = min(len(groups), 4) or 1
    nrows = math.ceil(len(groups) / ncols) or 1
    width = max(MIN_WIDTH_INCHES, 4.5 * ncols)  # >= 1000 px: legible labels, even one panel
    fig = Figure(figsize=(width, 3.8 * nrows), dpi=100)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    return fig, {label: (ax, by_init) for ax, (label, by_init) in zip(axes.flat, groups.items())}


def _finite(values: list[float]) -> list[float]:
    return [v if math.isfinite(v) and v > 0 else float("nan") for v in values]


def _decorate(ax) -> None:
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)


def plot_loss_curves(sweep: Sweep, path: Path) -> None:
    """Training loss against step, log scale: per init the mean over seeds and, with several
    seeds, their min-max band; a diverged run is an x where it stopped."""
    fig, panels = _panels(sweep)
    colors = _colors(sweep.runs)
    for label, (ax, by_init) in panels.items():
        for init, group in by_init.items():
            curve = mean_curve(group, "train/loss_step")
            if curve:
                ax.plot(list(curve), _finite(list(curve.values())), label=init, color=colors[init])
            if curve and len(group) > 1:
                low, high = _spread(group, "train/loss_step", list(curve))
                ax.fill_between(list(curve), low, high, color=colors[init], alpha=0.15, lw=0)
            for run in group:
                if run.status == "diverged":
                    _mark_divergence(ax, run, colors[init])
        ax.set(yscale="log", xlabel="step", ylabel="train loss", title=label)
        _decorate(ax)
    _save(fig, path)


def _spread(group: list[SweepRun], tag: str, steps: list[int]) -> tuple[list[float], list[float]]:
    """Per step, the min and max over the runs that logged it."""
    values = [[r.curves[tag][s] for r in group if s in r.curves.get(tag, {})] for s in steps]
    return _finite([min(v) for v in values]), _finite([max(v) for v in values])


def _mark_divergence(ax, run: SweepRun, color: str) -> None:
    """An x at the run's diverged step, at its last finite loss (or the top of the axis)."""
    if run.record.divergence is None:
        return
    step = run.record.divergence.step
    losses = [v for v in run.curves.get("train/loss_step", {}).values() if math.isfinite(v)]
    y = losses[-1] if losses else ax.get_ylim()[1]
    label = None if DIVERGED in ax.get_legend_handles_labels()[1] else DIVERGED
    ax.plot([step], [y], "x", markersize=10, mew=2.5, color=color, label=label)


def plot_signal(sweep: Sweep, path: Path, at: str = "init") -> None:
    """Activation std of every layer output (Linear, Conv, recurrent; mean over seeds) against
    depth, at step 0 (``at="init"``: what the init did) or at each run's last logged step
    (``"end"``: what training made of it). Activation and block outputs are left out: mixed
    into one line they zigzag (each run's own depth figures show them as separate lines)."""
    fig, panels = _panels(sweep)
    colors = _colors(sweep.runs)
    when = "at step 0" if at == "init" else "at the last logged step"
    for label, (ax, by_init) in panels.items():
        for init, group in by_init.items():
            tags = _layer_output_tags(group)
            values = [_mean_at(group, tag, at) for tag in tags]
            if values:
                ax.plot(_finite(values), marker=".", label=init, color=colors[init])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(yscale="log", xlabel="layer output (Linear/Conv/recurrent, forward order)")
        ax.set(ylabel=f"activation std {when}", title=label)
        _decorate(ax)
    _save(fig, path)


def _layer_output_tags(group: list[SweepRun]) -> list[str]:
    """The group's activation-std tags of layer outputs, in depth order, told apart by the
    watched layers' kinds in the runs' records; every watched output for a record without
    them (written before records held them)."""
    tags = {t for r in group for t in r.curves if t.startswith(ACT_STD)}
    ordered = sorted(tags, key=lambda t: depth(parse_stat_tag(t)[1]))
    layers = next((r.record.layers for r in group if r.record.layers), {})
    if not layers:
        return ordered
    return [t for t in ordered if layers.get(parse_stat_tag(t)[1], {}).get("kind") == LAYER_OUTPUT]


def _mean_at(group: list[SweepRun], tag: str, at: str) -> float:
    """The tag's value at step 0, or at each run's last logged step, averaged over the runs
    where it is finite (a diverged seed's inf would blank the whole init's line)."""
    values = []
    for run in group:
        curve = run.curves.get(tag, {})
        if curve:
            values.append(curve.get(0, math.nan) if at == "init" else curve[max(curve)])
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan
