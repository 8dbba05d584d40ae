"""Per-member statistics, computed on the tensor's device without a host sync.

Every value is per member, shape (K,): a population's K members (K = 1 for a single run), each
exactly what its own tensor alone gives, so member k logs what the single run with its config
logs. An output or its gradient comes as a population's stacked model makes it, (K * B, ...)
with member k's batch in rows k * B to (k + 1) * B - 1 (``members`` says K); a parameter as its
members' tensors stacked, (K, ...).

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


def by_member(x: Tensor, members: int) -> Tensor:
    """(K, B, ...) from a stacked (K * B, ...): member k's rows are its own batch."""
    return x.unflatten(0, (members, -1))


def _moments(x: Tensor) -> dict[str, Tensor]:
    """Per member: count, sum, the sum of squared deviations from the mean (m2) and
    count * mean^2."""
    flat = _flat(x)
    var, mean = torch.var_mean(flat, dim=1, correction=0)
    n = torch.full(mean.shape, float(flat.shape[1]), dtype=F64, device=x.device)
    mean = mean.to(F64)
    return {"count": n, "sum": mean * n, "m2": var.to(F64) * n, "nmsq": mean.square() * n}


def _count(mask: Tensor) -> Tensor:
    """True values per member."""
    return _flat(mask).sum(dim=1).to(F64)


def activation_moments(
    x: Tensor, bounded: str | None = None, unit_dim: int = 1, members: int = 1
) -> dict[str, Tensor]:
    """Sums from which ``activation_stats`` follows, per member of ``x`` (members * B, ...).
    ``alive`` (K, units) marks the units (``unit_dim`` of a member's output: channels of a
    conv, features of a Linear, hidden units of an LSTM) that fired for some sample, position
    or time step; ``saturated`` counts values near a 'tanh' or 'sigmoid' bound."""
    x = by_member(x.detach().float(), members)
    moments = _moments(x) | {"zeros": _count(x == 0)}
    if x.dim() >= 3:
        unit = unit_dim % (x.dim() - 1) + 1  # past the member dim
        others = [d for d in range(1, x.dim()) if d != unit]
        alive = (x.amax(dim=others) != 0) | (x.amin(dim=others) != 0)
        moments["alive"] = alive.to(F64)
    if bounded == "tanh":
        moments["saturated"] = _count(x.abs() > SATURATION)
    elif bounded == "sigmoid":
        moments["saturated"] = _count((x < 1 - SATURATION) | (x > SATURATION))
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
        stats["act_dead_frac"] = 1 - m["alive"].mean(dim=-1)
    if "saturated" in m:
        stats["act_saturated_frac"] = m["saturated"] / n
    return stats


def gradient_moments(g: Tensor, members: int = 1) -> dict[str, Tensor]:
    """Sums from which ``gradient_stats`` follows, per member of ``g`` (members * B, ...)."""
    g = by_member(g.detach().float(), members)
    return _moments(g) | {"abs_max": _flat(g).abs().amax(dim=1).to(F64)}


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
    """Per member of ``weight`` (K, *shape): norm and std of the weight (the tensor the layer
    uses) and of its gradient (times ``grad_scale``: 1 / the loss scale under 16-mixed), max
    |gradient|, and optionally the largest singular value of the weight's ``(out, in * kh *
    kw)`` matrix. For Linear and LSTM weights that is the factor by which the layer can stretch
    a signal; a conv's operator norm on images is larger (up to sqrt(kh * kw) times it; about
    1.6 times for a random 3x3 conv, by the exact method of Sedghi et al. 2019). Direct
    reductions: DDP has already averaged the gradient."""
    w = weight.detach().float()
    stats = {"weight_norm": _flat(w).norm(dim=1), "weight_std": _tensor_std(w)}
    if singular_value and w.dim() >= 3:
        stats["weight_sigma_max"] = _sigma_max(w.reshape(w.shape[0], w.shape[1], -1))
    if grad is not None:
        g = grad.detach().float()
        stats |= {
            "grad_norm": _flat(g).norm(dim=1) * grad_scale,
            "grad_std": _tensor_std(g) * grad_scale,
            "grad_max": _flat(g).abs().amax(dim=1) * grad_scale,
        }
    return stats


def stacked_grads(params: list[Tensor]) -> Tensor | None:
    """The members' gradients of one tensor, stacked (K, ...); None where no member has one
    (a parameter the loss does not reach). A member without one (frozen) counts as zeros: its
    values are not logged."""
    grads = [p.grad for p in params]
    if all(g is None for g in grads):
        return None
    if len(grads) == 1:  # a single run: its gradient as it is, no copy
        return grads[0].unsqueeze(0)
    return torch.stack([torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)])


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def _tensor_std(x: Tensor) -> Tensor:
    flat = _flat(x)
    return flat.std(dim=1) if flat.shape[1] > 1 else flat.new_zeros(flat.shape[0])


def _sigma_max(w: Tensor) -> Tensor:
    """Largest singular value of each matrix of ``w`` (K, out, in); NaN for a non-finite one
    (a diverged member), whose SVD would raise and stop every other member's."""
    finite = w.isfinite().flatten(1).all(dim=1)
    sigma = torch.linalg.matrix_norm(torch.where(w.isfinite(), w, 0), ord=2)
    return torch.where(finite, sigma, torch.nan)


def histogram(x: Tensor, bins: int, limit: float, members: int = 1) -> Tensor:
    """Counts (K, bins) per member of ``x`` (members * B, ...) over fixed edges ``linspace(-limit,
    limit, bins + 1)``; values beyond the range are counted in the outermost bins, so no mass
    disappears; NaNs are not counted (as ``torch.histc``). One ``bincount`` for all members:
    ``histc`` would be a kernel per member."""
    flat = _flat(by_member(x.detach().float().clamp(-limit, limit), members))
    # histc's own arithmetic on the CPU, so a value on an edge falls in the same bin
    index = ((flat + limit) * bins / (2 * limit)).long().clamp_(0, bins - 1)
    index += torch.arange(members, device=x.device).unsqueeze(1) * bins
    index = torch.where(flat.isnan(), members * bins, index)  # one extra bin, dropped
    counts = torch.bincount(index.flatten(), minlength=members * bins + 1)
    return counts[:-1].view(members, bins).float()
