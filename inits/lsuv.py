"""LSUV: orthogonal weights, then each layer rescaled until its output has unit variance on data."""

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import torch
from torch import Tensor, nn

from inits.strategy import InitStrategy
from inits.targets import RECURRENT, WeightTarget, weight_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerReport:
    """Where LSUV left one weight: the output variance it reached, after how many rescalings."""

    name: str
    variance: float
    iterations: int


class LSUV(InitStrategy):
    """Layer-sequential unit-variance init (Mishkin & Matas 2016, "All you need is a good init",
    Algorithm 1): orthogonal pre-init, then for each layer in forward order
    ``W <- W / sqrt(Var(output))`` until ``|Var - 1| < tolerance`` or ``max_iters`` rescalings,
    else it fails naming the layer.

    A layer's output is its pre-activation (Linear/Conv output, before any norm). For an LSTM it
    is each gate's contribution, ``W_ih[gate] x_t`` or ``W_hh[gate] h_(t-1)``, measured per layer
    on the sequences the layer really sees. ``report`` holds the per-layer result.
    """

    def __init__(self, tolerance: float = 0.1, max_iters: int = 10, **shared: Any) -> None:
        if tolerance <= 0 or max_iters < 1:
            raise ValueError(
                f"lsuv needs tolerance > 0 and max_iters >= 1, got {tolerance}, {max_iters}"
            )
        super().__init__(**shared)
        self.tolerance, self.max_iters = tolerance, max_iters
        self.report: list[LayerReport] = []

    def resolve_gain(self, model: nn.Module) -> float:
        return 1.0 if self.gain is None else self.gain  # the rescaling sets the scale

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        nn.init.orthogonal_(target.tensor, gain)

    @torch.no_grad()
    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        if batch is None:
            raise ValueError("lsuv needs a batch of training data to measure variances")
        super().__call__(model, batch)
        self.report = []
        for _, group in groupby(weight_targets(model), key=_coupled):
            self.report += self._rescale(model, batch, list(group))
        for r in self.report:
            log.info("LSUV %-40s variance %.4f, %d rescalings", r.name, r.variance, r.iterations)
        return model

    def _rescale(
        self, model: nn.Module, batch: Tensor, group: list[WeightTarget]
    ) -> list[LayerReport]:
        """Rescale the weights of ``group`` together until each is within tolerance."""
        for iteration in range(self.max_iters + 1):
            variances = [_output_variance(model, batch, t) for t in group]
            if all(abs(v - 1.0) < self.tolerance for v in variances):
                return [LayerReport(t.name, v, iteration) for t, v in zip(group, variances)]
            if not all(v > 0 for v in variances) or iteration == self.max_iters:
                break
            for target, variance in zip(group, variances):
                target.tensor.div_(variance**0.5)
        worst, variance = max(zip(group, variances), key=lambda tv: abs(tv[1] - 1.0))
        raise RuntimeError(
            f"LSUV: '{worst.name}' cannot reach unit output variance: {variance:.4g} after "
            f"{iteration} rescalings (tolerance {self.tolerance}, max_iters {self.max_iters})"
            + (" - its output is constant on this batch (dead units?)" if not variance > 0 else "")
        )


def _coupled(target: WeightTarget) -> tuple:
    """The four recurrent gate blocks of one LSTM layer feed each other through h, so they are
    rescaled together; every other weight alone."""
    return (id(target.module), target.layer) if target.recurrent else (target.name,)


def _output_variance(model: nn.Module, batch: Tensor, target: WeightTarget) -> float:
    with _capture(target.module) as seen:
        model(batch)
    if not isinstance(target.module, RECURRENT):
        return seen["output"].float().var().item()
    inputs, hiddens = _lstm_layer_sequences(target.module, seen["input"])[target.layer]
    source = hiddens[:, :-1] if target.recurrent else inputs  # h_(t-1) feeds step t
    return (source @ target.tensor.T).float().var().item()


@contextmanager
def _capture(module: nn.Module):
    seen: dict[str, Tensor] = {}

    def hook(_: nn.Module, args: tuple, output: Tensor | tuple) -> None:
        seen["input"] = args[0]
        seen["output"] = output[0] if isinstance(output, tuple) else output

    handle = module.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _lstm_layer_sequences(lstm: nn.Module, x: Tensor) -> list[tuple[Tensor, Tensor]]:
    """(input sequence, hidden sequence) of each layer of a batch-first LSTM."""
    if not isinstance(lstm, nn.LSTM):  # LayerNormLSTMCell: one layer, sequence in and out
        return [(x, lstm(x))]
    layers = []
    for k in range(lstm.num_layers):
        single = nn.LSTM(x.shape[-1], lstm.hidden_size, batch_first=True).to(x.device, x.dtype)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(single, f"{name}_l0", getattr(lstm, f"{name}_l{k}"))  # shared, not copied
        hidden, _ = single(x)
        layers.append((x, hidden))
        x = hidden
    return layers
