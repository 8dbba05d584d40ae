"""One statistic against depth, per run: the profile at the first and last logged step, and a
depth x step heatmap of the whole run. Drawn from the tidy table once training has ended (or
failed), so they cost nothing while it trains; TensorBoard's per-layer cards cannot show this,
and its outlier clipping can hide the step-0 value they keep."""

from collections.abc import Iterable, Mapping

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from callbacks.figures import layer_ticks, new_figure, spans_decades
from callbacks.watched import depth

DEPTH_STATS = ("act_std", "act_grad_norm", "act_dead_frac", "update_ratio")
MAX_STEP_TICKS = 12
Values = Mapping[tuple[int, str], float]  # value by (step, layer tag)


def depth_figure(
    stat: str,
    values: Values,
    labels: Mapping[str, str],
    series: Mapping[str, str],
    title: str | None = None,
) -> Figure:
    """``stat`` of every layer: against depth at the first and last step (left; log y when it
    spans more than a decade), and as a layer x step heatmap (right; log colours when it spans
    more than two). Missing values (a ratio over a zero bias at step 0) are grey.

    Args:
        stat: the statistic's name, for the labels.
        values: its value by (step, layer tag).
        labels: tick label of each layer tag.
        series: each layer tag's series: its kind ("layer output", "Linear weight", ...).
        title: the run's init, shown in the title.
    """
    layers = sorted({layer for _, layer in values}, key=lambda t: (depth(t), t))
    steps = sorted({step for step, _ in values})
    names = [labels.get(t, t) for t in layers]
    fig, (left, right) = new_figure(height=5.5, columns=2, width_ratios=(1, 1.15))
    _profiles(left, stat, values, layers, steps, series)
    layer_ticks(left, names)
    left.set_xlabel("layer (forward order)")
    _heatmap(fig, right, stat, values, layers, steps)
    layer_ticks(right, names, axis="y")
    fig.suptitle(f"{stat} against depth" + (f": init={title}" if title else ""))
    return fig


def _profiles(
    ax: Axes, stat: str, values: Values, layers: list[str], steps: list[int], series: Mapping
) -> None:
    log = spans_decades(list(values.values()))
    shown = [(steps[0], "-", 1.0)] + ([(steps[-1], "--", 0.6)] if len(steps) > 1 else [])
    for colour, kind in enumerate(_kinds(series.get(t, "") for t in layers)):
        for step, linestyle, alpha in shown:
            points = [(i, values.get((step, t))) for i, t in enumerate(layers)]
            points = [(i, v) for (i, v), t in zip(points, layers) if series.get(t, "") == kind]
            points = [(i, v) for i, v in points if v is not None and (v > 0 or not log)]
            if points:
                x, y = zip(*points)
                label = f"{kind or stat}, step {step}"
                ax.plot(x, y, f"C{colour}", marker="o", ls=linestyle, alpha=alpha, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(stat + (" (log scale)" if log else ""))
    ax.set_title("first and last logged step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _kinds(kinds: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(kinds))  # in order of first appearance: stable colours


def _heatmap(
    fig: Figure, ax: Axes, stat: str, values: Values, layers: list[str], steps: list[int]
) -> None:
    grid = np.full((len(layers), len(steps)), np.nan)
    column = {step: j for j, step in enumerate(steps)}
    row = {layer: i for i, layer in enumerate(layers)}
    for (step, layer), value in values.items():
        grid[row[layer], column[step]] = value
    finite = grid[np.isfinite(grid)].tolist()
    log = spans_decades(finite, decades=2)
    norm = LogNorm(min(finite), max(finite)) if log else None
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
    every = max(1, -(-len(steps) // MAX_STEP_TICKS))
    ax.set_xticks(range(0, len(steps), every), [str(s) for s in steps[::every]], fontsize=8)
    ax.set_xlabel("step")
    ax.set_title("over training (first layer at the top)")
    fig.colorbar(image, ax=ax, label=stat + (" (log scale)" if log else ""), pad=0.01)
