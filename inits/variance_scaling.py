"""Xavier/Glorot, LeCun and Kaiming/He as one configurable rule (see ``variance_scaling_``)."""

from typing import Any

from inits.samplers import Distribution, FanMode, check_variance_scaling, variance_scaling_
from inits.strategy import InitStrategy
from inits.targets import WeightTarget


class VarianceScaling(InitStrategy):
    """Every weight ~ std ``gain / sqrt(fan)``; `conf/init/` names the presets:

    - ``xavier_*``: fan_avg, gain 1 (Glorot & Bengio 2010).
    - ``lecun_*``: fan_in, gain 1 (LeCun et al. 1998; what Caffe called "xavier").
    - ``kaiming_*``: fan_in, gain from the activation, sqrt(2) for ReLU (He et al. 2015).
    """

    def __init__(
        self,
        mode: FanMode = "fan_in",
        distribution: Distribution = "normal",
        **shared: Any,
    ) -> None:
        super().__init__(**shared)
        check_variance_scaling(mode, distribution)
        self.mode = mode
        self.distribution = distribution

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        variance_scaling_(target.tensor, gain, self.mode, self.distribution)
