"""Forward passes outside training (LSUV's measurements, a guard's diagnosis) without their side
effects on the model's buffers."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def buffers_restored(model: nn.Module) -> Iterator[None]:
    """Snapshot every buffer of ``model`` and put it back on exit, exceptions included.

    A training-mode forward pass updates each BatchNorm's ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` (momentum 0.1): 16 LSUV passes leave a ResNet's statistics mostly
    made of the init's batch before training has seen any. Restoring the buffers is exact, where
    eval mode would change what the forward computes.
    """
    saved = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in saved:
                    buffer.copy_(saved[name])
