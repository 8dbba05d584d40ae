"""Pictures of the statistics: signal propagation at init, colorful dimension over time."""

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from callbacks.watched import depth  # noqa: E402


def signal_propagation_figure(scalars: dict[tuple[str, str], float]) -> Figure:
    """Activation std and activation-gradient std per layer, depth on the x axis, log scale:
    a flat line propagates, a falling one vanishes, a rising one explodes."""
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    for stat, label in (("act_std", "activation std"), ("act_grad_std", "gradient std")):
        points = sorted(((layer, v) for (s, layer), v in scalars.items() if s == stat), key=_depth)
        if points:
            ax.plot(range(len(points)), [max(v, 1e-30) for _, v in points], marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("layer (forward order)")
    ax.set_title("signal propagation at step 0")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def _depth(item: tuple[str, float]) -> int:
    return depth(item[0])


def colorful_dimension(counts: Tensor) -> Tensor:
    """A (1, bins, steps) image of histograms over time (fastai's "colorful dimension"), on a log
    scale, largest values at the top (row 0 is the last bin), so collapse to zero or spread to
    the edges shows at a glance."""
    image = torch.log1p(counts).flip(0)
    return (image / image.max().clamp_min(1e-12)).unsqueeze(0)
