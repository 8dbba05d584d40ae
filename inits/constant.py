"""Constant weights, zeros included: the symmetric init that hidden units cannot escape."""

from typing import Any

from torch import nn

from inits.strategy import InitStrategy
from inits.targets import WeightTarget


class Constant(InitStrategy):
    """Every weight = ``value``. With 0 (``init=zeros``) the hidden units of a layer stay
    identical forever and, behind ReLU, receive no gradient at all (Goodfellow et al. 2016,
    sec. 8.4: initialization must "break symmetry")."""

    fixed_gain_reason = "not used: the value is absolute"

    def __init__(self, value: float = 0.0, **shared: Any) -> None:
        super().__init__(**shared)
        self.value = value

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        nn.init.constant_(target.tensor, self.value)
