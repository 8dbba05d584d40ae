"""The loss scale of fp16 mixed precision, by which every gradient a hook sees is multiplied."""

import lightning as L
import torch
from torch import Tensor


def loss_scale(trainer: L.Trainer) -> Tensor | None:
    """The precision plugin's ``GradScaler`` scale for the backward pass just run, as a tensor
    on the device, or None when gradients are not scaled (32-true, bf16-mixed).

    Lightning's ``MixedPrecision`` unscales gradients only after the closure, so tensor hooks
    and ``on_after_backward`` see them times this (65536 at first). Read it before the
    optimizer step: ``scaler.update()`` then changes it in place, hence the copy."""
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is None or not scaler.is_enabled():
        return None
    scale = getattr(scaler, "_scale", None)  # private; the public get_scale() syncs the host
    if not isinstance(scale, Tensor):
        return torch.tensor(float(scaler.get_scale()))
    return scale.detach().clone()
