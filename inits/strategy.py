"""The model-level contract every init strategy follows."""

import inspect
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from inits.gains import activation_gain
from inits.targets import WeightTarget, reset_biases_and_norms, weight_targets

log = logging.getLogger(__name__)


class NotApplicable(TypeError):
    """A strategy cannot initialize this kind of layer (e.g. delta_orthogonal on a Linear)."""


class InitStrategy:
    """Initializes a whole model: each weight through ``init_weight``, then biases, norms and
    residual branches by the shared rules of ``inits.targets``.

    Args:
        gain: multiplies every weight's scale; None derives it from the model's ``activation``
            attribute (``inits.gains.activation_gain``).
        bias: value of every bias; None leaves PyTorch's default.
        forget_bias: an LSTM's effective forget-gate bias; None leaves it to ``bias``.
        recurrent_orthogonal: an LSTM's hidden-to-hidden weights orthogonal per gate (Saxe et
            al. 2014), whatever the strategy does to the other weights.
        zero_init_residual: zero the last layer of every residual branch (Goyal et al. 2017),
            through the block's own ``zero_init_last()``.
        fallback: the strategy for layers this one does not apply to; None fails naming them.
    """

    def __init__(
        self,
        gain: float | None = None,
        bias: float | None = 0.0,
        forget_bias: float | None = 1.0,
        recurrent_orthogonal: bool = False,
        zero_init_residual: bool = False,
        fallback: "InitStrategy | None" = None,
    ) -> None:
        self.gain, self.bias, self.forget_bias = gain, bias, forget_bias
        self.recurrent_orthogonal, self.zero_init_residual = (
            recurrent_orthogonal,
            zero_init_residual,
        )
        self.fallback = fallback

    def resolve_gain(self, model: nn.Module) -> float:
        if self.gain is not None:
            return self.gain
        return activation_gain(getattr(model, "activation", "linear"))

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        """Fill ``target.tensor`` in place, or raise ``NotApplicable`` saying why not."""
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        gain = self.resolve_gain(model)
        for target in weight_targets(model):
            self._init_one(target, gain, model)
        reset_biases_and_norms(model, self.bias, self.forget_bias)
        if self.zero_init_residual:
            self._zero_residual_branches(model)
        log.info("%s initialized %s (gain %.4g)", type(self).__name__, type(model).__name__, gain)
        return model

    def _init_one(self, target: WeightTarget, gain: float, model: nn.Module) -> None:
        if target.recurrent and self.recurrent_orthogonal:
            nn.init.orthogonal_(target.tensor)
            return
        try:
            self.init_weight(target, gain)
        except NotApplicable as error:
            if self.fallback is None:
                raise NotApplicable(
                    f"init {type(self).__name__} does not apply to '{target.name}': {error}. "
                    f"Choose a fallback for such layers, e.g. init@init.fallback=kaiming_normal"
                ) from error
            log.info("%s: '%s' uses the fallback", type(self).__name__, target.name)
            self.fallback.init_weight(target, self.fallback.resolve_gain(model))

    @staticmethod
    def _zero_residual_branches(model: nn.Module) -> None:
        blocks = [m for m in model.modules() if hasattr(m, "zero_init_last")]
        if not blocks:
            raise NotApplicable(
                f"zero_init_residual: {type(model).__name__} has no residual blocks "
                f"(modules with zero_init_last()); use it with model=resnet"
            )
        for block in blocks:
            block.zero_init_last()


def apply_init(strategy: Callable[..., Any], model: nn.Module, batch: Tensor) -> None:
    """Call a strategy, or any custom callable, with the model and, if it takes one, the batch."""
    try:
        inspect.signature(strategy).bind(model, batch)
    except TypeError:
        strategy(model)
    else:
        strategy(model, batch)
