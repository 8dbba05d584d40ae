"""Per-tensor initializers, following the ``torch.nn.init`` contract: tensor first, filled in
place without autograd, the tensor returned, invalid options named in a ``ValueError``."""

import math
from typing import Literal

import torch
from torch import Tensor, nn

from inits.targets import fans

FanMode = Literal["fan_in", "fan_out", "fan_avg"]
Distribution = Literal["normal", "truncated_normal", "uniform"]
FAN_MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")

# std of a standard normal truncated to [-2, 2]; dividing by it restores the requested std
# (the constant JAX's and Keras' variance_scaling use).
_TRUNCATED_STD = 0.87962566103423978


def check_variance_scaling(mode: str, distribution: str) -> None:
    """Fail naming the bad option and the valid ones."""
    if mode not in FAN_MODES:
        raise ValueError(f"unknown fan mode '{mode}'; choose one of: {', '.join(FAN_MODES)}")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"unknown distribution '{distribution}'; choose one of: {', '.join(DISTRIBUTIONS)}"
        )


@torch.no_grad()
def variance_scaling_(
    tensor: Tensor,
    gain: float = 1.0,
    mode: FanMode = "fan_in",
    distribution: Distribution = "normal",
) -> Tensor:
    """Fill ``tensor`` with zero-mean values of std ``gain / sqrt(fan)``.

    One rule behind three names (JAX's ``variance_scaling``): ``fan_avg`` is Glorot & Bengio
    (2010) "Xavier", ``fan_in`` with gain 1 is LeCun et al. (1998), ``fan_in``/``fan_out`` with
    the activation's gain is He et al. (2015) "Kaiming". ``fan_avg`` uses (fan_in + fan_out) / 2.
    ``uniform`` samples U(-a, a) with a = sqrt(3) * std; ``truncated_normal`` cuts at 2 std and
    rescales so the std is still exact. Same seed -> same numbers as ``nn.init.kaiming_normal_``,
    ``kaiming_uniform_``, ``xavier_normal_`` and ``xavier_uniform_`` with the same gain.
    """
    check_variance_scaling(mode, distribution)
    fan_in, fan_out = fans(tensor)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = gain / math.sqrt(fan)
    if distribution == "normal":
        return tensor.normal_(0.0, std)
    if distribution == "uniform":
        bound = math.sqrt(3.0) * std
        return tensor.uniform_(-bound, bound)
    std /= _TRUNCATED_STD
    return nn.init.trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std)


@torch.no_grad()
def delta_orthogonal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Fill a conv kernel with an orthogonal (out x in) matrix times ``gain`` at its spatial
    centre and zeros elsewhere (Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of
    CNNs", Algorithm 2). The convolution then starts as an orthogonal 1x1 map of the channels.
    """
    if tensor.dim() < 3:
        raise ValueError(
            f"delta_orthogonal_ needs a conv kernel (>= 3 dims), got {tuple(tensor.shape)}"
        )
    centre = tuple(k // 2 for k in tensor.shape[2:])
    tensor.zero_()
    nn.init.orthogonal_(tensor[(slice(None), slice(None), *centre)], gain)
    return tensor


@torch.no_grad()
def spectral_(
    tensor: Tensor, gain: float = 1.0, exact_below: int = 2048, iters: int = 50
) -> Tensor:
    """Divide ``tensor`` by its spectral norm (largest singular value of the ``(out, -1)``
    matrix, as ``torch.nn.utils.parametrizations.spectral_norm`` defines it), times ``gain``
    (Miyato et al. 2018). Exact SVD when the smaller side is below ``exact_below``, else
    ``iters`` steps of power iteration."""
    matrix = tensor.reshape(tensor.shape[0], -1)
    if min(matrix.shape) < exact_below:
        sigma = torch.linalg.matrix_norm(matrix.double(), ord=2).to(tensor.dtype)
    else:
        v = torch.randn(matrix.shape[1], device=tensor.device, dtype=tensor.dtype)
        for _ in range(iters):
            u = nn.functional.normalize(matrix @ v, dim=0)
            v = nn.functional.normalize(matrix.T @ u, dim=0)
        sigma = u @ matrix @ v
    return tensor.mul_(gain / sigma)
