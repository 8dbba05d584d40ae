"""The gain that keeps activations' second moment constant through a nonlinearity."""

import math

from torch import nn

# E[gelu(z)^2] for z ~ N(0, 1), by numerical integration: the same second-moment argument that
# gives sqrt(2) for ReLU (He et al. 2015, eq. 7). torch's calculate_gain has no entry for GELU.
_GELU_SECOND_MOMENT = 0.42522


def activation_gain(activation: str, negative_slope: float = 0.01) -> float:
    """``torch.nn.init.calculate_gain`` for ``activation``, plus GELU (1 / sqrt(E[gelu(z)^2]))."""
    if activation == "gelu":
        return 1.0 / math.sqrt(_GELU_SECOND_MOMENT)
    return nn.init.calculate_gain(
        activation, negative_slope if activation == "leaky_relu" else None
    )
