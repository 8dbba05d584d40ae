"""Orthogonal weights: every singular value equal, so signals keep their norm through depth."""

from torch import nn

from inits.samplers import delta_orthogonal_
from inits.strategy import InitStrategy, NotApplicable
from inits.targets import WeightTarget


class Orthogonal(InitStrategy):
    """Each weight (a conv kernel flattened to ``(out, in*k*k)``, an LSTM gate block on its own)
    is a random (semi-)orthogonal matrix times the gain (Saxe et al. 2014), via
    ``torch.nn.init.orthogonal_``: W W^T = gain^2 I when out <= in, W^T W = gain^2 I otherwise."""

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        nn.init.orthogonal_(target.tensor, gain)


class DeltaOrthogonal(InitStrategy):
    """Convolutions as orthogonal 1x1 maps at the kernel centre, zeros elsewhere (Xiao et al.
    2018); it has no meaning for Linear or LSTM weights, which go to ``fallback``."""

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        if target.tensor.dim() < 3:
            raise NotApplicable(
                f"it needs a convolution kernel, and {type(target.module).__name__} weights are "
                f"matrices of shape {tuple(target.tensor.shape)}"
            )
        delta_orthogonal_(target.tensor, gain)
