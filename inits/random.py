"""Fixed-scale random weights, independent of the layer's size: the naive baseline."""

import math
from typing import Any

import torch
from torch import Tensor, nn

from inits.strategy import InitStrategy
from inits.targets import WeightTarget


class Normal(InitStrategy):
    """Every weight ~ N(mean, std^2), whatever its fan. Too small a std vanishes with depth (0.01
    is the classic "small random numbers"), too large explodes or saturates (Glorot & Bengio
    2010, sec. 4.2; the fastai lesson "Why you need a good init").

    ``truncate=c`` cuts the normal at ``c`` of its own std from the mean and widens it so the
    weights' std is still exactly ``std`` (``truncated_normal_``): ``init=trunc_normal``."""

    fixed_gain_reason = "not used: std is absolute"

    def __init__(
        self, std: float = 0.01, mean: float = 0.0, truncate: float | None = None, **shared: Any
    ) -> None:
        if std < 0:
            raise ValueError(f"init.std must be >= 0, got {std}")
        if truncate is not None and truncate <= 0:
            raise ValueError(f"init.truncate must be > 0 (stds) or null, got {truncate}")
        super().__init__(**shared)
        self.std = std
        self.mean = mean
        self.truncate = truncate

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        if self.truncate is None:
            nn.init.normal_(target.tensor, self.mean, self.std)
        else:
            truncated_normal_(target.tensor, self.std, self.mean, self.truncate)


def truncated_std(cut: float) -> float:
    """The std of N(0, 1) restricted to [-cut, cut]: sqrt(1 - 2 cut phi(cut) / (2 Phi(cut) - 1)),
    with phi, Phi the standard normal density and distribution (0.8796 for cut 2)."""
    mass = math.erf(cut / math.sqrt(2))  # 2 Phi(cut) - 1
    density = math.exp(-(cut**2) / 2) / math.sqrt(2 * math.pi)
    return math.sqrt(1 - 2 * cut * density / mass)


@torch.no_grad()
def truncated_normal_(tensor: Tensor, std: float, mean: float = 0.0, cut: float = 2.0) -> Tensor:
    """Fill ``tensor`` from a normal cut at ``mean +- cut * sigma``, with sigma = std /
    ``truncated_std(cut)`` so the values' std is exactly ``std`` (as JAX's and Keras'
    ``variance_scaling`` do for cut 2). The ViT/BERT convention "std 0.02, cut at 2 std" then
    means what it says; ``torch.nn.init.trunc_normal_(std=0.02)`` keeps sigma = 0.02 and cuts at
    the absolute bounds a=-2, b=2 (timm's ``trunc_normal_(std=.02)`` too): 100 std, no cut at all,
    and BERT's ``tf.truncated_normal_initializer(0.02)`` cuts at 2 sigma but leaves std 0.0176."""
    sigma = std / truncated_std(cut)
    return nn.init.trunc_normal_(tensor, mean, sigma, mean - cut * sigma, mean + cut * sigma)


class Uniform(InitStrategy):
    """Every weight ~ U(low, high), whatever its fan."""

    fixed_gain_reason = "not used: the bounds are absolute"

    def __init__(self, low: float = -0.05, high: float = 0.05, **shared: Any) -> None:
        if low > high:
            raise ValueError(f"init.low must be <= init.high, got {low} > {high}")
        super().__init__(**shared)
        self.low = low
        self.high = high

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        nn.init.uniform_(target.tensor, self.low, self.high)
