"""Spectral normalization: every layer starts with largest singular value ``gain``."""

import logging
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from inits.samplers import spectral_
from inits.strategy import InitStrategy
from inits.targets import WEIGHTED, WeightTarget

log = logging.getLogger(__name__)


class Spectral(InitStrategy):
    """Keep PyTorch's default weights but divide each by its spectral norm, times ``gain``
    (Miyato et al. 2018): no layer can stretch a signal by more than ``gain``.

    With ``parametrize=True`` every Linear and Conv also keeps
    ``torch.nn.utils.parametrizations.spectral_norm`` during training, so the constraint holds at
    every step (sigma = 1 then; LSTM weights are normalized once, not parametrized).
    """

    def __init__(self, parametrize: bool = False, **shared: Any) -> None:
        super().__init__(**shared)
        if parametrize and self.gain not in (None, 1.0):
            raise ValueError(f"spectral parametrize=true fixes sigma to 1; got gain={self.gain}")
        self.parametrize = parametrize

    def resolve_gain(self, model: nn.Module) -> float:
        return 1.0 if self.gain is None else self.gain

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        spectral_(target.tensor, gain)

    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        super().__call__(model, batch)
        if self.parametrize:
            layers = [m for m in model.modules() if isinstance(m, WEIGHTED)]
            with torch.no_grad():
                for layer in layers:
                    spectral_norm(layer)
            log.info("spectral_norm parametrization kept on %d layers", len(layers))
        return model
