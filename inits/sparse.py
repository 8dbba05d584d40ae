"""Sparse initialization: a fixed number of nonzero incoming weights per unit."""

from typing import Any

import torch
from torch import Tensor

from inits.strategy import InitStrategy
from inits.targets import WeightTarget


@torch.no_grad()
def sparse_rows_(tensor: Tensor, k: int = 15, std: float = 1.0) -> Tensor:
    """Give every unit exactly ``min(k, fan_in)`` nonzero incoming weights ~ N(0, std^2), at
    positions drawn without replacement, and zeros elsewhere (Martens 2010, sec. 5).

    A unit is a row of the ``(out, fan_in)`` matrix: a conv's output channel has ``k`` nonzeros
    among its in_channels x kh x kw entries (the fan_in of ``torch.nn.init``), an LSTM gate
    block one per gate row. A layer with fan_in < k gets all its weights nonzero.

    ``torch.nn.init.sparse_(tensor, sparsity, std=0.01)`` is another rule: it zeroes a
    fraction ``sparsity`` of each *column* of a 2-D tensor and draws the rest from N(0, 0.01^2),
    so a unit's number of inputs grows with the layer's width.
    """
    if k < 1:
        raise ValueError(f"init.k must be >= 1 nonzero weights per unit, got {k}")
    rows = tensor.reshape(tensor.shape[0], -1)
    fan_in = rows.shape[1]
    chosen = torch.rand(rows.shape, device=tensor.device).argsort(dim=1)[:, : min(k, fan_in)]
    values = torch.zeros_like(rows)
    values.scatter_(1, chosen, torch.randn(chosen.shape, device=tensor.device).mul_(std))
    return tensor.copy_(values.reshape(tensor.shape))


class Sparse(InitStrategy):
    """Martens (2010), "Deep learning via Hessian-free optimization", sec. 5: each unit gets
    ``k`` (15) nonzero incoming weights ~ N(0, 1) and a zero bias, so the scale of a unit's
    input does not depend on the layer's width, and units differ more than with dense small
    weights (``sparse_rows_``)."""

    fixed_gain_reason = "not used: std is absolute"

    def __init__(self, k: int = 15, std: float = 1.0, **shared: Any) -> None:
        super().__init__(**shared)
        if k < 1:
            raise ValueError(f"init.k must be >= 1 nonzero weights per unit, got {k}")
        if std < 0:
            raise ValueError(f"init.std must be >= 0, got {std}")
        self.k = k
        self.std = std

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        sparse_rows_(target.tensor, self.k, self.std)
