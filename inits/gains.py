"""The gain that keeps activations' second moment constant through a nonlinearity, read from the
activation modules a model really contains."""

import logging
import math

from torch import nn

log = logging.getLogger(__name__)

# E[f(z)^2] for z ~ N(0, 1), by numerical integration (scipy.integrate.quad over [0, inf),
# doubled: both are even functions of z): the same second-moment argument that gives sqrt(2) for
# ReLU (He et al. 2015, eq. 7); the gain 1 / sqrt(E[f(z)^2]) keeps unit pre-activation variance.
# torch's calculate_gain has no entry for either: GELU 1.5335, softsign (x / (1 + |x|),
# Glorot & Bengio 2010) 2.3375.
_SECOND_MOMENTS = {"gelu": 0.42522, "softsign": 0.18301}

# Module type -> the name ``calculate_gain`` knows. An LSTM's cell nonlinearity is tanh (its
# gates' sigmoids act on the same pre-activations, and torch recommends tanh's gain for them).
_KNOWN: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.GELU: "gelu",
    nn.Softsign: "softsign",
    nn.SELU: "selu",
    nn.LSTM: "tanh",
    nn.LSTMCell: "tanh",
    nn.GRU: "tanh",  # its candidate state is tanh'd, its gates are sigmoids, like the LSTM's
    nn.GRUCell: "tanh",
}
# Modules of torch.nn.modules.activation that are not a layer's elementwise nonlinearity.
_NOT_ACTIVATIONS = (nn.Softmax, nn.Softmin, nn.LogSoftmax, nn.Softmax2d, nn.MultiheadAttention)


def activation_gain(activation: str, negative_slope: float = 0.01) -> float:
    """``torch.nn.init.calculate_gain`` for ``activation``, plus GELU and softsign
    (1 / sqrt(E[f(z)^2]), ``_SECOND_MOMENTS``)."""
    if activation in _SECOND_MOMENTS:
        return 1.0 / math.sqrt(_SECOND_MOMENTS[activation])
    return nn.init.calculate_gain(
        activation, negative_slope if activation == "leaky_relu" else None
    )


def model_gain(model: nn.Module, strategy: str) -> tuple[float, str]:
    """The gain of the activation modules in ``model``, and what it was read from (for the log).

    A module declares its nonlinearity by a ``nonlinearity`` attribute (as ``nn.RNN`` does, and
    the models' ``activation='linear'`` identity), or by its type (ReLU, LeakyReLU with its
    slope, Tanh, Sigmoid, Softsign, GELU, SELU; LSTM: tanh). Mixed or unknown activations have
    no single gain: they need ``init.gain``. None at all (functional activations) gives 1, with a
    warning.
    """
    found: dict[str, tuple[float, str]] = {}  # nonlinearity -> (gain, the first module's label)
    for module in model.modules():
        nonlinearity = _module_nonlinearity(module, strategy)
        if nonlinearity is not None:
            found.setdefault(nonlinearity[0], nonlinearity[1:])
    if len(found) > 1:
        labels = ", ".join(label for _, label in found.values())
        raise ValueError(
            f"{strategy}: the model has mixed activations ({labels}), so no single gain fits "
            f"every layer; give one with init.gain=NUMBER"
        )
    if not found:
        log.warning(
            "%s: no activation module in %s (functional activations?): using gain 1 (linear); "
            "set init.gain to choose another",
            strategy,
            type(model).__name__,
        )
        return 1.0, "linear"
    ((gain, label),) = found.values()
    return gain, label


def _module_nonlinearity(module: nn.Module, strategy: str) -> tuple[str, float, str] | None:
    """(nonlinearity, gain, label) when ``module`` is an activation, else None."""
    declared = getattr(module, "nonlinearity", None)
    if isinstance(declared, str):
        name = declared
        label = declared
    else:
        name = next((n for t, n in _KNOWN.items() if isinstance(module, t)), None)
        label = type(module).__name__
    if name is None:
        is_activation = type(module).__module__ == nn.modules.activation.__name__
        if is_activation and not isinstance(module, _NOT_ACTIVATIONS):
            raise ValueError(
                f"{strategy}: no gain is known for {type(module).__name__}; give one with "
                f"init.gain=NUMBER (or give the module a nonlinearity attribute: 'relu', ...)"
            )
        return None
    slope = getattr(module, "negative_slope", 0.01)
    gain = activation_gain(name, slope)
    if name == "leaky_relu":  # each slope its own gain
        name = f"{name}({slope:g})"
        label = f"{label}({slope:g})"
    return name, gain, label
