"""Spectral normalization: every weight matrix starts with largest singular value ``gain``."""

import logging
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from inits.samplers import spectral_
from inits.strategy import InitStrategy
from inits.targets import WEIGHTED, NotApplicable, WeightTarget

log = logging.getLogger(__name__)


class Spectral(InitStrategy):
    """Keep PyTorch's default weights but divide each by its spectral norm, times ``gain``
    (Miyato et al. 2018): the largest singular value of the weight as an ``(out, in * kh * kw)``
    matrix, as ``spectral_norm`` and the paper define it. A Linear layer (or an LSTM gate) then
    stretches no signal by more than ``gain``; a conv can, since its operator norm on images
    is up to sqrt(kh * kw) times the matrix's (about 1.6 times for a random 3x3 conv; Sedghi et
    al. 2019 compute the exact value).

    With ``parametrize=True`` every Linear and Conv also keeps
    ``torch.nn.utils.parametrizations.spectral_norm`` during training, so the matrix norm stays
    1 at every step (LSTM weights are normalized once, not parametrized).
    """

    fixed_gain_reason = "every sigma_max 1"

    def __init__(self, parametrize: bool = False, **shared: Any) -> None:
        super().__init__(**shared)
        if parametrize and self.gain not in (None, 1.0):
            raise ValueError(f"spectral parametrize=true fixes sigma to 1; got gain={self.gain}")
        self.parametrize = parametrize

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        spectral_(target.tensor, gain)

    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        super().__call__(model, batch)
        if self.parametrize:
            layers = [m for m in model.modules() if isinstance(m, WEIGHTED)]
            _refuse_zero_weights(model)
            with torch.no_grad():
                for layer in layers:
                    spectral_norm(layer)
            log.info("spectral_norm parametrization kept on %d layers", len(layers))
        return model


def _refuse_zero_weights(model: nn.Module) -> None:
    """A spectrally normalized weight has sigma_max 1, so it cannot stay zero (W / sigma(W) is
    0/0 = NaN): refuse the weights ``zero_init_residual`` zeroed, by name."""
    for name, module in model.named_modules():
        if isinstance(module, WEIGHTED) and not module.weight.any():
            raise NotApplicable(
                f"spectral parametrize=true cannot keep '{name}.weight' at zero (zero_init_residual"
                f" zeroed it; a spectrally normalized weight has sigma_max 1): zero a norm's scale "
                f"instead (model.norm=batchnorm or layernorm), or set init.parametrize=false"
            )
