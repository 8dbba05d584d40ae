"""The model-level contract every init strategy follows."""

import logging

import torch
from torch import Tensor, nn

from inits.gains import activation_gain
from inits.targets import WeightTarget, reset_biases_and_norms, weight_targets

log = logging.getLogger(__name__)


class InitStrategy:
    """Initializes a whole model: each weight through ``init_weight``, then biases and norms by
    the shared rules of ``inits.targets``.

    Args:
        gain: multiplies every weight's scale; None derives it from the model's ``activation``
            attribute (``inits.gains.activation_gain``).
        bias: value of every bias; None leaves PyTorch's default.
        forget_bias: an LSTM's effective forget-gate bias; None leaves it to ``bias``.
    """

    def __init__(
        self, gain: float | None = None, bias: float | None = 0.0, forget_bias: float | None = 1.0
    ) -> None:
        self.gain, self.bias, self.forget_bias = gain, bias, forget_bias

    def resolve_gain(self, model: nn.Module) -> float:
        if self.gain is not None:
            return self.gain
        return activation_gain(getattr(model, "activation", "linear"))

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        """Fill ``target.tensor`` in place."""
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        gain = self.resolve_gain(model)
        count = 0
        for target in weight_targets(model):
            self.init_weight(target, gain)
            count += 1
        reset_biases_and_norms(model, self.bias, self.forget_bias)
        log.info("%s: initialized %d weight tensors, gain %.4g", type(self).__name__, count, gain)
        return model
