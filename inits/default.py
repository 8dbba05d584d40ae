"""The framework's own init: whatever each PyTorch layer's ``reset_parameters`` chose."""

from torch import Tensor, nn

from inits.targets import zero_residual_branches


class Default:
    """Leaves the model as built. PyTorch's Linear and Conv use kaiming_uniform_ with a=sqrt(5),
    i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (std 1/sqrt(3 fan_in)), biases U(+-1/sqrt(fan_in));
    nn.LSTM uses U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias.

    Args:
        zero_init_residual: zero the last layer of every residual branch, as every strategy can.
    """

    def __init__(self, zero_init_residual: bool = False) -> None:
        self.zero_init_residual = zero_init_residual

    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        if self.zero_init_residual:
            zero_residual_branches(model)
        return model
