"""Init strategies (model level) and per-tensor samplers (the ``torch.nn.init`` contract)."""

from inits.buffers import buffers_restored
from inits.constant import Constant
from inits.default import Default
from inits.fixup import Fixup
from inits.gains import activation_gain, model_gain
from inits.lsuv import LSUV, LayerReport
from inits.orthogonal import DeltaOrthogonal, Orthogonal
from inits.random import Normal, Uniform
from inits.samplers import delta_orthogonal_, spectral_, variance_scaling_
from inits.spectral import Spectral
from inits.strategy import InitStrategy, NotApplicable, apply_init
from inits.targets import WeightTarget, fans, weight_targets
from inits.variance_scaling import VarianceScaling

__all__ = [
    "LSUV",
    "Constant",
    "Default",
    "DeltaOrthogonal",
    "Fixup",
    "InitStrategy",
    "LayerReport",
    "Normal",
    "NotApplicable",
    "Orthogonal",
    "Spectral",
    "Uniform",
    "VarianceScaling",
    "WeightTarget",
    "activation_gain",
    "apply_init",
    "buffers_restored",
    "delta_orthogonal_",
    "fans",
    "model_gain",
    "spectral_",
    "variance_scaling_",
    "weight_targets",
]
