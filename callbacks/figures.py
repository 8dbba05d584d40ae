"""Pictures of the statistics: signal propagation at init, colorful dimension over time.

Figures are ``matplotlib.figure.Figure`` objects, not pyplot's: no global state, nothing to
close, and TensorBoard's ``add_figure`` renders them with the Agg canvas.
"""

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from callbacks.watched import depth

DPI = 100
WIDTH = 12.0  # inches: 1200 px, wide enough for a hundred rotated layer names
MAX_TICKS = 40  # more layer names than this overlap: every k-th is shown
SERIES_STYLE = {  # a layer's output and the activation after it differ by design: two lines
    "layer output": {"marker": "o", "linestyle": "-"},
    "activation output": {"marker": "s", "linestyle": "--"},
    "block output": {"marker": "D", "linestyle": ":"},
}
SIGNAL_STATS = (("act_std", "C0", "activation std"), ("act_grad_std", "C1", "gradient std"))


def new_figure(height: float = 5.0, columns: int = 1, **grid) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, columns, gridspec_kw=grid or None, squeeze=False)[0]
    return fig, list(axes)


def layer_ticks(ax: Axes, labels: list[str], axis: str = "x") -> None:
    """Integer positions labelled with layer names (every k-th past ``MAX_TICKS``)."""
    every = max(1, -(-len(labels) // MAX_TICKS))
    positions = list(range(0, len(labels), every))
    names = [labels[i] for i in positions]
    if axis == "x":
        ax.set_xticks(positions, names, rotation=60, ha="right", rotation_mode="anchor", fontsize=7)
        ax.set_xlim(-0.5, len(labels) - 0.5)
    else:
        ax.set_yticks(positions, names, fontsize=7)


def spans_decades(values: list[float], decades: float = 1.0) -> bool:
    """Whether a log scale suits ``values``: all positive and max/min above 10**decades."""
    finite = [v for v in values if np.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 10**decades


def signal_propagation_figure(
    scalars: Mapping[tuple[str, str], float],
    labels: Mapping[str, str],
    series: Mapping[str, str],
    title: str | None = None,
) -> Figure:
    """Activation std and activation-gradient std per layer at step 0, in forward order, log
    scale: a flat line propagates, a falling one vanishes, a rising one explodes. Layer outputs
    and activation outputs are separate lines (a ReLU halves the second moment by design).

    Args:
        scalars: step-0 values by (stat, layer tag).
        labels: tick label of each layer tag.
        series: each layer tag's kind ("layer output", "activation output", "block output").
        title: the run's init, shown in the title.
    """
    layers = sorted({layer for stat, layer in scalars if stat == "act_std"}, key=depth)
    fig, (ax,) = new_figure()
    for stat, colour, name in SIGNAL_STATS:
        for kind, style in SERIES_STYLE.items():
            kept = [(i, t) for i, t in enumerate(layers) if series.get(t) == kind]
            points = [(i, scalars.get((stat, t))) for i, t in kept]
            points = [(i, max(v, 1e-30)) for i, v in points if v is not None]
            if points:
                x, y = zip(*points)
                ax.plot(x, y, color=colour, label=f"{name}, {kind}", **style)
    ax.set_yscale("log")
    layer_ticks(ax, [labels.get(t, t) for t in layers])
    ax.set_xlabel("layer (forward order)")
    ax.set_ylabel("std at step 0 (log scale)")
    ax.set_title("signal propagation at step 0" + (f": init={title}" if title else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def colorful_dimension_figure(counts: Tensor, steps: list[int], limit: float, title: str) -> Figure:
    """Histograms of one output over time (fastai's "colorful dimension"): x the step, y the
    value (largest at the top), colour log(1 + count), so collapse to zero or spread to the
    edges shows at a glance.

    Args:
        counts: (bins, len(steps)) counts over the edges ``linspace(-limit, limit, bins + 1)``.
        steps: the step of each column, evenly spaced.
        limit: the outermost edge.
        title: the layer's name.
    """
    half = (steps[1] - steps[0]) / 2 if len(steps) > 1 else 0.5
    fig, (ax,) = new_figure(height=3.2)
    image = ax.imshow(
        np.log1p(counts.double().numpy()),
        origin="lower",  # row 0, the lowest bin, at the bottom
        aspect="auto",
        cmap="magma",
        interpolation="nearest",
        extent=(steps[0] - half, steps[-1] + half, -limit, limit),
    )
    fig.colorbar(image, ax=ax, label="log(1 + count)", pad=0.01)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.set_title(f"distribution of {title} over training")
    return fig
