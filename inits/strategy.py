"""The model-level contract every init strategy follows."""

import inspect
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from inits.gains import model_gain
from inits.targets import (
    NotApplicable,
    WeightTarget,
    reset_biases_and_norms,
    weight_targets,
    zero_residual_branches,
)

log = logging.getLogger(__name__)


class InitStrategy:
    """Initializes a whole model: each weight through ``init_weight``, then biases, norms and
    residual branches by the shared rules of ``inits.targets``.

    Args:
        gain: multiplies every weight's scale; None derives it from the activation modules the
            model contains (``inits.gains.model_gain``), unless the strategy fixes its own scale.
        bias: value of every bias; None leaves PyTorch's default.
        forget_bias: an LSTM's effective forget-gate bias; None leaves it to ``bias``.
        recurrent_orthogonal: an LSTM's hidden-to-hidden weights orthogonal per gate (Saxe et
            al. 2014), whatever the strategy does to the other weights.
        zero_init_residual: zero the last layer of every residual branch (Goyal et al. 2017),
            through the block's own ``zero_init_last()``.
        fallback: the strategy for layers this one does not apply to; None fails naming them.
        fallback_only: accept a model where no layer gets this strategy, only the fallback;
            otherwise such a run stops, since its label would name an init it never used.
    """

    # Why the gain is 1 when ``gain`` is None, for strategies whose scale does not follow the
    # activation; None: the gain follows the model's activation modules.
    fixed_gain_reason: str | None = None

    def __init__(
        self,
        gain: float | None = None,
        bias: float | None = 0.0,
        forget_bias: float | None = 1.0,
        recurrent_orthogonal: bool = False,
        zero_init_residual: bool = False,
        fallback: "InitStrategy | None" = None,
        fallback_only: bool = False,
    ) -> None:
        self.gain = gain
        self.bias = bias
        self.forget_bias = forget_bias
        self.recurrent_orthogonal = recurrent_orthogonal
        self.zero_init_residual = zero_init_residual
        if fallback is not None and not isinstance(fallback, InitStrategy):
            raise TypeError(
                f"init.fallback must be a strategy that writes weights (orthogonal, "
                f"kaiming_normal, ...), got {type(fallback).__name__}"
            )
        self.fallback = fallback
        self.fallback_only = fallback_only

    def resolve_gain(self, model: nn.Module) -> tuple[float, str]:
        """The gain for every weight of ``model``, and where it comes from."""
        if self.gain is not None:
            return self.gain, "init.gain"
        if self.fixed_gain_reason is not None:
            return 1.0, self.fixed_gain_reason
        return model_gain(model, type(self).__name__)

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        """Fill ``target.tensor`` in place, or raise ``NotApplicable`` saying why not."""
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        gain, source = self.resolve_gain(model)
        log.info(
            "%s initializes %s: gain %.4g (%s)",
            type(self).__name__,
            type(model).__name__,
            gain,
            source,
        )
        self._init_weights(model, gain)
        reset_biases_and_norms(model, self.bias, self.forget_bias)
        if self.zero_init_residual:
            zero_residual_branches(model)
        return model

    def _init_weights(self, model: nn.Module, gain: float) -> None:
        """Every weight by ``init_weight``, the others by the fallback; a model where no weight
        gets this strategy stops unless ``fallback_only`` says that was meant."""
        targets = list(weight_targets(model))
        fell_back = []
        for target in targets:
            if target.recurrent and self.recurrent_orthogonal:
                nn.init.orthogonal_(target.tensor)
            elif not self._init_one(target, gain):
                fell_back.append(target)
        if not fell_back:
            return
        name = type(self).__name__
        fallback = type(self.fallback).__name__
        if len(fell_back) == len(targets) and not self.fallback_only:
            raise NotApplicable(
                f"{name} applies to no layer of {type(model).__name__}: every weight would use "
                f"the fallback {fallback}; choose another init, or set init.fallback_only=true "
                f"to run with the fallback alone"
            )
        fallback_gain, source = self.fallback.resolve_gain(model)
        log.log(
            logging.WARNING if len(fell_back) == len(targets) else logging.INFO,
            "%s: %d of %d weights use the fallback %s (gain %.4g, %s): %s",
            name,
            len(fell_back),
            len(targets),
            fallback,
            fallback_gain,
            source,
            ", ".join(t.name for t in fell_back),
        )
        for target in fell_back:
            self.fallback.init_weight(target, fallback_gain)

    def _init_one(self, target: WeightTarget, gain: float) -> bool:
        """Initialize ``target``; False when this strategy does not apply and a fallback will."""
        try:
            self.init_weight(target, gain)
        except NotApplicable as error:
            if self.fallback is None:
                raise NotApplicable(
                    f"init {type(self).__name__} does not apply to '{target.name}': {error}. "
                    f"Choose a fallback for such layers, e.g. init@init.fallback=kaiming_normal"
                ) from error
            return False
        return True


def apply_init(strategy: Callable[..., Any], model: nn.Module, batch: Tensor) -> None:
    """Call a strategy, or any custom callable, with the model, and with the batch by keyword if
    it has a parameter named ``batch`` (or ``**kwargs``): never positionally, where it would land
    in whatever parameter comes second (``def my_init(model, scale=0.5)``)."""
    parameters = inspect.signature(strategy).parameters.values()
    takes_batch = any(
        (p.name == "batch" and p.kind is not p.POSITIONAL_ONLY) or p.kind is p.VAR_KEYWORD
        for p in parameters
    )
    if takes_batch:
        strategy(model, batch=batch)
    else:
        strategy(model)
