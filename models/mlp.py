"""Multilayer perceptron: the model where init effects are easiest to see and to reason about."""

import math

from torch import Tensor, nn

from models.layers import activation_layer, feature_norm


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units, then a linear classifier.

    Each hidden layer is Linear -> LayerNorm (when ``norm='layernorm'``) -> activation: LayerNorm
    normalizes the summed inputs before the nonlinearity, as in Ba et al. (2016), sec. 3.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        depth: int = 3,
        width: int = 512,
        activation: str = "relu",
        norm: str = "none",
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"model.depth and model.width must be >= 1, got {depth}, {width}")
        sizes = [math.prod(input_shape)] + [width] * depth
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), feature_norm(norm, b), activation_layer(activation))
            for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)
