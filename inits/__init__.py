"""Init strategies (model level) and per-tensor samplers (the ``torch.nn.init`` contract)."""

from inits.default import Default
from inits.gains import activation_gain
from inits.samplers import variance_scaling_
from inits.strategy import InitStrategy
from inits.targets import WeightTarget, fans, weight_targets
from inits.variance_scaling import VarianceScaling

__all__ = [
    "Default",
    "InitStrategy",
    "VarianceScaling",
    "WeightTarget",
    "activation_gain",
    "fans",
    "variance_scaling_",
    "weight_targets",
]
