"""The sweep report's figures: loss curves and step-0 signal propagation, one panel per
setting (the sweep's varying values other than init and seed), one line per init."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from benchmarks.sweep_runs import Run, group_label, mean_curve  # noqa: E402
from callbacks.watched import depth, parse_stat_tag, stat_tag  # noqa: E402

ACT_STD = stat_tag("act_std", "")  # the prefix of every layer's activation-std tag


def _colors(runs: list[Run]) -> dict[str, str]:
    """One color per init, the same in every panel."""
    return {init: f"C{i % 10}" for i, init in enumerate(dict.fromkeys(r.init for r in runs))}


def _panels(runs: list[Run], keys: list[str]) -> tuple[Figure, dict[str, tuple]]:
    """One axis per setting; for each, its runs grouped by init."""
    groups: dict[str, dict[str, list[Run]]] = {}
    for run in runs:
        groups.setdefault(group_label(run, keys), {}).setdefault(run.init, []).append(run)
    ncols = min(len(groups), 4) or 1
    nrows = math.ceil(len(groups) / ncols) or 1
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.5 * ncols, 3.4 * nrows), dpi=90, squeeze=False
    )
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
    plt.close(fig)


def plot_loss_curves(runs: list[Run], keys: list[str], path: Path) -> None:
    """Training loss (mean over seeds) against step, log scale."""
    fig, panels = _panels(runs, keys)
    colors = _colors(runs)
    for label, (ax, by_init) in panels.items():
        for init, group in by_init.items():
            curve = mean_curve(group, "train/loss_step")
            if curve:
                ax.plot(list(curve), _finite(list(curve.values())), label=init, color=colors[init])
        ax.set(yscale="log", xlabel="step", ylabel="train loss", title=label)
        _decorate(ax)
    _save(fig, path)


def plot_signal_at_init(runs: list[Run], keys: list[str], path: Path) -> None:
    """Activation std of every watched layer at step 0 (mean over seeds) against depth."""
    fig, panels = _panels(runs, keys)
    colors = _colors(runs)
    for label, (ax, by_init) in panels.items():
        for init, group in by_init.items():
            tags = sorted({t for r in group for t in r.curves if t.startswith(ACT_STD)},
                          key=lambda t: depth(parse_stat_tag(t)[1]))  # fmt: skip
            values = [mean_curve(group, tag).get(0, float("nan")) for tag in tags]
            if values:
                ax.plot(_finite(values), marker=".", label=init, color=colors[init])
        ax.set(yscale="log", xlabel="layer (forward order)", ylabel="activation std at step 0")
        ax.set_title(label)
        _decorate(ax)
    _save(fig, path)
