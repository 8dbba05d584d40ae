"""Activation and normalization choices shared by every model, validated by name."""

from torch import nn


class LinearActivation(nn.Identity):
    """``activation='linear'``: the identity, marked (as ``nn.RNN`` marks its own) so that inits
    read gain 1 from it; a bare ``nn.Identity`` also stands in for ``norm='none'``."""

    nonlinearity = "linear"


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softsign": nn.Softsign,  # x / (1 + |x|): saturates polynomially (Glorot & Bengio 2010)
    "gelu": nn.GELU,
    "selu": nn.SELU,
    "leaky_relu": nn.LeakyReLU,  # slope 0.01; inits read the slope from the module
    "linear": LinearActivation,
}
NORMS = ("none", "layernorm", "batchnorm")


def check_choice(kind: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    """Return ``value`` or fail naming it and the valid choices."""
    if value not in choices:
        raise ValueError(f"unknown {kind} '{value}'; choose one of: {', '.join(choices)}")
    return value


def check_recurrent_sizes(hidden_size: int, num_layers: int) -> None:
    """The recurrent models' sizes (LSTM, RNN, GRU), failing with the keys' names."""
    if hidden_size < 1 or num_layers < 1:
        raise ValueError(
            f"model.hidden_size and model.num_layers must be >= 1, got {hidden_size}, {num_layers}"
        )


def activation_layer(name: str) -> nn.Module:
    check_choice("activation", name, list(ACTIVATIONS))
    return nn.ReLU(inplace=True) if name == "relu" else ACTIVATIONS[name]()


def channel_norm(norm: str, channels: int) -> nn.Module:
    """Norm of a conv feature map. LayerNorm: statistics over (C, H, W) per sample as in Ba et
    al. (2016), with a per-channel affine; GroupNorm with one group is exactly that (Wu & He
    2018). BatchNorm: per channel over the batch (Ioffe & Szegedy 2015)."""
    check_choice("norm", norm, NORMS)
    if norm == "batchnorm":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(1, channels) if norm == "layernorm" else nn.Identity()


def feature_norm(norm: str, features: int) -> nn.Module:
    """LayerNorm over the features of a fully connected layer (Ba et al. 2016), or BatchNorm of
    each feature over the batch."""
    check_choice("norm", norm, NORMS)
    if norm == "batchnorm":
        return nn.BatchNorm1d(features)
    return nn.LayerNorm(features) if norm == "layernorm" else nn.Identity()
