"""A user-defined init, as the README shows: any callable taking the model (and maybe a batch)."""

import torch
from torch import nn


def scaled_orthogonal(model: nn.Module, scale: float = 0.5) -> None:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.orthogonal_(module.weight, scale)
