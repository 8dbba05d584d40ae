"""LSUV: orthogonal weights, then each layer rescaled until its output has unit variance on data."""

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import torch
from torch import Tensor, nn

from inits.buffers import buffers_restored
from inits.strategy import InitStrategy
from inits.targets import RECURRENT, WeightTarget, weight_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerReport:
    """Where LSUV left one weight: the output mean and variance it reached, after how many
    rescalings."""

    name: str
    mean: float
    variance: float
    iterations: int


class LSUV(InitStrategy):
    """Layer-sequential unit-variance init (Mishkin & Matas 2016, "All you need is a good init",
    Algorithm 1): orthogonal pre-init, then for each layer in forward order
    ``W <- W / sqrt(Var(output))`` until ``|Var - 1| < tolerance`` or ``max_iters`` rescalings,
    else it fails naming the layer.

    ``center=True`` is the fastai variant (course part 2, 2019 notebook ``07a_lsuv``, 2022
    notebook ``11_initializing``: ``m.bias -= mean; m.weight /= std`` until ``|mean| < 1e-3``
    and ``|std - 1| < 1e-3``): each Linear/Conv output is also centred through the layer's bias,
    here as ``b <- (b - mean) / std, W <- W / std``, i.e. output ``(y - mean) / std``, until
    ``|mean| < tolerance`` too (use ``tolerance=1e-3`` to compare with fastai). Recurrent
    weights are only rescaled: an LSTM's bias is the gate's, which ``forget_bias`` sets.

    A layer's output is its pre-activation (Linear/Conv output, before any norm). For an RNN,
    LSTM or GRU it is each gate's contribution, ``W_ih[gate] x_t`` or ``W_hh[gate] h_(t-1)`` (the
    whole ``W_ih x_t`` or ``W_hh h_(t-1)`` for the RNN), measured per layer on the sequences the
    layer really sees. Weights that ``zero_init_residual`` zeroed stay zero.
    The forward passes run in training mode; BatchNorm statistics are restored afterwards.
    ``report`` holds the per-layer result.
    """

    fixed_gain_reason = "the rescaling sets the scale"

    def __init__(
        self, tolerance: float = 0.1, max_iters: int = 10, center: bool = False, **shared: Any
    ) -> None:
        if tolerance <= 0 or max_iters < 1:
            raise ValueError(
                f"lsuv needs tolerance > 0 and max_iters >= 1, got {tolerance}, {max_iters}"
            )
        super().__init__(**shared)
        self.tolerance = tolerance
        self.max_iters = max_iters
        self.center = center
        self.report: list[LayerReport] = []

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        nn.init.orthogonal_(target.tensor, gain)

    @torch.no_grad()
    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        if batch is None:
            raise ValueError("lsuv needs a batch of training data to measure variances")
        super().__call__(model, batch)
        self.report = []
        with buffers_restored(model):
            for _, group in groupby(weight_targets(model), key=_coupled):
                group = list(group)
                if not any(t.tensor.any() for t in group):  # zero_init_residual's: kept zero
                    log.info("LSUV %-40s kept at zero (zero_init_residual)", group[0].name)
                    continue
                self.report += self._rescale(model, batch, group)
        for r in self.report:
            log.info(
                "LSUV %-40s mean %.4f variance %.4f, %d rescalings",
                r.name,
                r.mean,
                r.variance,
                r.iterations,
            )
        return model

    def _centres(self, target: WeightTarget) -> bool:
        bias = getattr(target.module, "bias", None)
        return self.center and not isinstance(target.module, RECURRENT) and bias is not None

    def _rescale(
        self, model: nn.Module, batch: Tensor, group: list[WeightTarget]
    ) -> list[LayerReport]:
        """Rescale (and centre) the weights of ``group`` together until each is within
        tolerance.

        A weight fed by a fixed input has output variance ~ scale^2, so ``W / std`` lands on 1.
        A recurrent weight also scales its own input, the state: with ReLU units the variance
        grows faster than scale^2 and ``W / std`` overshoots back and forth, so its power is
        re-estimated from the last step (a secant in log-log), ``W * Var^(-1/power)``."""
        powers = [2.0] * len(group)
        previous = None
        for iteration in range(self.max_iters + 1):
            moments = [_output_moments(model, batch, t) for t in group]
            if all(
                abs(v - 1.0) < self.tolerance and (abs(m) < self.tolerance or not self._centres(t))
                for t, (m, v) in zip(group, moments)
            ):
                return [LayerReport(t.name, m, v, iteration) for t, (m, v) in zip(group, moments)]
            if not all(v > 0 for _, v in moments) or iteration == self.max_iters:
                break
            if previous is not None:
                powers = [
                    _power(p, v0, v) if t.recurrent else p
                    for t, p, v0, (_, v) in zip(group, powers, previous, moments)
                ]
            previous = [v for _, v in moments]
            for target, (mean, variance), power in zip(group, moments, powers):
                if self._centres(target):
                    target.module.bias.sub_(mean).div_(variance**0.5)
                target.tensor.mul_(variance ** (-1 / power))
        worst, (mean, variance) = max(zip(group, moments), key=lambda tm: abs(tm[1][1] - 1.0))
        raise RuntimeError(
            f"LSUV: '{worst.name}' cannot reach unit output variance: {variance:.4g} (mean "
            f"{mean:.3g}) after {iteration} rescalings (tolerance {self.tolerance}, max_iters "
            f"{self.max_iters})"
            + (" - its output is constant on this batch (dead units?)" if not variance > 0 else "")
        )


def _power(power: float, before: float, after: float) -> float:
    """The exponent of Var ~ scale^power seen in the last step, which multiplied the scale by
    ``before^(-1/power)`` and moved the variance from ``before`` to ``after``; at least 1."""
    step = -math.log(before) / power
    return max(1.0, math.log(after / before) / step) if abs(step) > 1e-6 else power


def _coupled(target: WeightTarget) -> tuple:
    """The recurrent gate blocks of one LSTM or GRU layer feed each other through h, so they are
    rescaled together; every other weight alone."""
    return (id(target.module), target.layer) if target.recurrent else (target.name,)


def _output_moments(model: nn.Module, batch: Tensor, target: WeightTarget) -> tuple[float, float]:
    """(mean, variance) of the output of ``target`` on ``batch``."""
    with _capture(target.module) as seen:
        model(batch)
    if isinstance(target.module, RECURRENT):
        inputs, hiddens = _layer_sequences(target.module, seen["input"])[target.layer]
        source = hiddens[:, :-1] if target.recurrent else inputs  # h_(t-1) feeds step t
        output = (source @ target.tensor.T).float()
    else:
        output = seen["output"].float()
    return output.mean().item(), output.var().item()


@contextmanager
def _capture(module: nn.Module):
    seen: dict[str, Tensor] = {}

    def hook(_: nn.Module, args: tuple, output: Tensor | tuple) -> None:
        seen["input"] = args[0]
        output = output[0] if isinstance(output, tuple) else output
        seen["output"] = output.clone()  # a following ReLU(inplace=True) would overwrite it

    handle = module.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _layer_sequences(rnn: nn.Module, x: Tensor) -> list[tuple[Tensor, Tensor]]:
    """(input sequence, hidden sequence) of each layer of a batch-first RNN, LSTM or GRU, each
    layer run alone as a one-layer module of the same kind that shares its parameters."""
    if not isinstance(rnn, nn.RNNBase):  # LayerNorm*Cell: one layer, sequence in and out
        return [(x, rnn(x))]
    extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    layers = []
    for k in range(rnn.num_layers):
        single = type(rnn)(x.shape[-1], rnn.hidden_size, bias=rnn.bias, batch_first=True, **extra)
        single = single.to(x.device, x.dtype)
        for name, _ in list(single.named_parameters()):
            setattr(single, name, getattr(rnn, name.replace("_l0", f"_l{k}")))  # shared, not copied
        hidden, _ = single(x)
        layers.append((x, hidden))
        x = hidden
    return layers
