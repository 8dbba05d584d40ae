"""Per-tensor statistics, computed on the tensor's device without a host sync.

Each function returns a dict of 0-d tensors; the callback stacks all of them and moves them to the
host once per logging step.
"""

import torch
from torch import Tensor

# |x| within this fraction of the bound counts as saturated (tanh: |x| > 0.99; sigmoid: x < 0.01
# or x > 0.99), where the derivative is below 0.02 and gradients barely pass.
SATURATION = 0.99


def activation_stats(x: Tensor, bounded: str | None = None) -> dict[str, Tensor]:
    """mean, std, RMS, fraction of exact zeros, fraction of dead units (zero for every sample
    and position of the batch) and, for a ``bounded`` activation ('tanh' or 'sigmoid'), the
    fraction of saturated values."""
    x = x.detach().float()
    stats = {
        "act_mean": x.mean(),
        "act_std": x.std(),
        "act_rms": x.square().mean().sqrt(),
        "act_zero_frac": (x == 0).float().mean(),
    }
    if x.dim() >= 2:
        units = x.transpose(0, 1).reshape(x.shape[1], -1)
        stats["act_dead_frac"] = (units == 0).all(dim=1).float().mean()
    if bounded == "tanh":
        stats["act_saturated_frac"] = (x.abs() > SATURATION).float().mean()
    elif bounded == "sigmoid":
        stats["act_saturated_frac"] = ((x < 1 - SATURATION) | (x > SATURATION)).float().mean()
    return stats


def gradient_stats(g: Tensor, prefix: str) -> dict[str, Tensor]:
    """L2 norm, std and max |g| of a gradient."""
    g = g.detach().float()
    return {
        f"{prefix}_norm": g.norm(),
        f"{prefix}_std": g.std() if g.numel() > 1 else g.new_zeros(()),
        f"{prefix}_max": g.abs().max(),
    }


def weight_stats(w: Tensor, singular_value: bool = False) -> dict[str, Tensor]:
    """Norm and std of a weight, and optionally its largest singular value (of the ``(out, -1)``
    matrix), the factor by which the layer can stretch a signal."""
    w = w.detach().float()
    stats = {"weight_norm": w.norm(), "weight_std": w.std() if w.numel() > 1 else w.new_zeros(())}
    if singular_value and w.dim() >= 2:
        stats["weight_sigma_max"] = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2)
    return stats


def histogram(x: Tensor, bins: int, limit: float) -> Tensor:
    """Counts over fixed edges ``linspace(-limit, limit, bins + 1)``; values beyond the range are
    counted in the outermost bins, so no mass disappears."""
    x = x.detach().float().clamp(-limit, limit)
    return torch.histc(x, bins=bins, min=-limit, max=limit)
