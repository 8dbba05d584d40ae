"""Init strategies (model level) and per-tensor samplers (the ``torch.nn.init`` contract)."""

from inits.buffers import buffers_restored
from inits.constant import Constant
from inits.default import Default
from inits.fixup import Fixup
from inits.gains import activation_gain, model_gain
from inits.irnn import IRNN
from inits.lsuv import LSUV, LayerReport
from inits.orthogonal import DeltaOrthogonal, Orthogonal
from inits.random import Normal, Uniform, truncated_normal_
from inits.residual_scalars import ReZero, SkipInit
from inits.samplers import delta_orthogonal_, spectral_, variance_scaling_
from inits.sparse import Sparse, sparse_rows_
from inits.spectral import Spectral
from inits.strategy import InitStrategy, NotApplicable, apply_init
from inits.targets import WeightTarget, fans, weight_targets
from inits.variance_scaling import VarianceScaling
from inits.zero import ZerO, zero_

__all__ = [
    "IRNN",
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
    "ReZero",
    "SkipInit",
    "Sparse",
    "Spectral",
    "Uniform",
    "VarianceScaling",
    "WeightTarget",
    "ZerO",
    "activation_gain",
    "apply_init",
    "buffers_restored",
    "delta_orthogonal_",
    "fans",
    "model_gain",
    "sparse_rows_",
    "spectral_",
    "truncated_normal_",
    "variance_scaling_",
    "weight_targets",
    "zero_",
]
