"""Per-tensor statistics, computed on the tensor's device without a host sync.

Activations and their gradients are first reduced to sums (``*_moments``: count, sum, the sum of
squared deviations from the local mean, counts of zeros...), which add up across DDP ranks
(``callbacks.reduce``), and only then turned into statistics (``*_stats``), so a logged std is
the global batch's, not rank 0's. Each rank's variance comes from ``torch.var_mean`` (one
pass, no cancellation) and ranks are combined exactly (Chan et al. 1979). Parameters need no
reduction: DDP has averaged their gradients before any hook sees them.
"""

import torch
from torch import Tensor

# |x| within this fraction of the bound counts as saturated (tanh: |x| > 0.99; sigmoid: x < 0.01
# or x > 0.99), where the derivative is below 0.02 and gradients barely pass.
SATURATION = 0.99
# Moments reduced across ranks with max; every other moment is summed.
MAX_MOMENTS = ("alive", "abs_max")
# A ratio over a weight norm below this (a zero-initialized bias at step 0) is not logged at
# that step: 1e-3 / 1e-12 would put 1e9 on a chart whose other lines are near 1e-3.
RATIO_FLOOR = 1e-6
F64 = torch.float64  # the moments' dtype: combining ranks' sums must not lose the std


def _moments(x: Tensor) -> dict[str, Tensor]:
    """count, sum, the sum of squared deviations from the mean (m2) and count * mean^2."""
    var, mean = torch.var_mean(x, correction=0)
    n = torch.tensor(float(x.numel()), dtype=F64, device=x.device)
    mean = mean.to(F64)
    return {"count": n, "sum": mean * n, "m2": var.to(F64) * n, "nmsq": mean.square() * n}


def activation_moments(
    x: Tensor, bounded: str | None = None, unit_dim: int = 1
) -> dict[str, Tensor]:
    """Sums from which ``activation_stats`` follows; ``alive`` marks the units (``unit_dim``:
    channels of a conv, features of a Linear, hidden units of an LSTM) that fired for some
    sample, position or time step; ``saturated`` counts values near a 'tanh' or 'sigmoid'
    bound."""
    x = x.detach().float()
    moments = _moments(x) | {"zeros": (x == 0).sum().to(F64)}
    if x.dim() >= 2:
        others = [d for d in range(x.dim()) if d != unit_dim % x.dim()]
        alive = (x.amax(dim=others) != 0) | (x.amin(dim=others) != 0)
        moments["alive"] = alive.to(F64)
    if bounded == "tanh":
        moments["saturated"] = (x.abs() > SATURATION).sum().to(F64)
    elif bounded == "sigmoid":
        moments["saturated"] = ((x < 1 - SATURATION) | (x > SATURATION)).sum().to(F64)
    return moments


def activation_stats(m: dict[str, Tensor]) -> dict[str, Tensor]:
    """mean, std, RMS, fraction of exact zeros, fraction of dead units (zero for every sample
    and position of the batch) and, for a bounded activation, the fraction saturated."""
    n = m["count"]
    stats = {
        "act_mean": m["sum"] / n,
        "act_std": _std(m),
        "act_rms": (_sum_of_squares(m) / n).sqrt(),
        "act_zero_frac": m["zeros"] / n,
    }
    if "alive" in m:
        stats["act_dead_frac"] = 1 - m["alive"].mean()
    if "saturated" in m:
        stats["act_saturated_frac"] = m["saturated"] / n
    return stats


def gradient_moments(g: Tensor) -> dict[str, Tensor]:
    g = g.detach().float()
    return _moments(g) | {"abs_max": g.abs().max().to(F64)}


def gradient_stats(m: dict[str, Tensor], prefix: str, scale: float = 1.0) -> dict[str, Tensor]:
    """L2 norm, std and max |g| of a gradient, times ``scale`` (1 / world size for activation
    gradients under DDP: each rank's loss is its local mean, the global loss their average)."""
    return {
        f"{prefix}_norm": _sum_of_squares(m).sqrt() * scale,
        f"{prefix}_std": _std(m) * scale,
        f"{prefix}_max": m["abs_max"] * scale,
    }


def _sum_of_squares(m: dict[str, Tensor]) -> Tensor:
    return m["m2"] + m["nmsq"]


def _std(m: dict[str, Tensor]) -> Tensor:
    """Sample std (Bessel-corrected, like ``Tensor.std``; 0 for a single value) of the union of
    the summed parts: m2 plus the spread of the parts' means around the global mean."""
    n = m["count"]
    between = (m["nmsq"] - m["sum"].square() / n).clamp_min(0)  # 0 for a single part
    return ((m["m2"] + between) / (n - 1).clamp_min(1)).sqrt()


def parameter_stats(
    weight: Tensor,
    grad: Tensor | None,
    singular_value: bool = False,
    grad_scale: Tensor | float = 1.0,
) -> dict[str, Tensor]:
    """Norm and std of a weight (the tensor the layer uses) and of its gradient (times
    ``grad_scale``: 1 / the loss scale under 16-mixed), max |gradient|, and optionally the
    largest singular value of the weight's ``(out, in * kh * kw)`` matrix. For Linear and LSTM
    weights that is the factor by which the layer can stretch a signal; a conv's operator norm on
    images is larger (up to sqrt(kh * kw) times it; about 1.6 times for a random 3x3 conv, by
    the exact method of Sedghi et al. 2019). Direct reductions: DDP has already averaged the
    gradient."""
    w = weight.detach().float()
    stats = {"weight_norm": w.norm(), "weight_std": _tensor_std(w)}
    if singular_value and w.dim() >= 2:
        stats["weight_sigma_max"] = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2)
    if grad is not None:
        g = grad.detach().float()
        stats |= {
            "grad_norm": g.norm() * grad_scale,
            "grad_std": _tensor_std(g) * grad_scale,
            "grad_max": g.abs().max() * grad_scale,
        }
    return stats


def _tensor_std(x: Tensor) -> Tensor:
    return x.std() if x.numel() > 1 else x.new_zeros(())


def histogram(x: Tensor, bins: int, limit: float) -> Tensor:
    """Counts over fixed edges ``linspace(-limit, limit, bins + 1)``; values beyond the range are
    counted in the outermost bins, so no mass disappears."""
    x = x.detach().float().clamp(-limit, limit)
    return torch.histc(x, bins=bins, min=-limit, max=limit)
