"""Fixed-scale random weights, independent of the layer's size: the naive baseline."""

from typing import Any

from torch import nn

from inits.strategy import InitStrategy
from inits.targets import WeightTarget


class Normal(InitStrategy):
    """Every weight ~ N(mean, std^2), whatever its fan. Too small a std vanishes with depth (0.01
    is the classic "small random numbers"), too large explodes or saturates (Glorot & Bengio
    2010, sec. 4.2; the fastai lesson "Why you need a good init")."""

    fixed_gain_reason = "not used: std is absolute"

    def __init__(self, std: float = 0.01, mean: float = 0.0, **shared: Any) -> None:
        if std < 0:
            raise ValueError(f"init.std must be >= 0, got {std}")
        super().__init__(**shared)
        self.std, self.mean = std, mean

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        nn.init.normal_(target.tensor, self.mean, self.std)


class Uniform(InitStrategy):
    """Every weight ~ U(low, high), whatever its fan."""

    fixed_gain_reason = "not used: the bounds are absolute"

    def __init__(self, low: float = -0.05, high: float = 0.05, **shared: Any) -> None:
        if low > high:
            raise ValueError(f"init.low must be <= init.high, got {low} > {high}")
        super().__init__(**shared)
        self.low, self.high = low, high

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        nn.init.uniform_(target.tensor, self.low, self.high)
