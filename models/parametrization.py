"""How width enters the init scale and the per-layer learning rates: standard (SP) or muP.

muP, the Maximal Update Parametrization (Yang & Hu 2021, "Tensor Programs IV"; Yang et al. 2022,
"Tensor Programs V", Table 3), scales each layer with the width so that every layer keeps
learning features, by the same amount per step, as the net grows: the hyperparameters tuned on
a narrow net then transfer to a wide one. In TP5's Table 3 (SP in brackets), n = fan_in:

| | input weights, all biases | hidden weights | output weights (readout) |
|---|---|---|---|
| init variance | 1/n (1/n) | 1/n (1/n) | 1/n^2 (1/n) |
| SGD lr | fan_out (1) | 1 (1) | 1/n (1) |
| Adam lr | 1 (1) | 1/n (1) | 1/n (1) |

Written relative to a base width (as the ``mup`` package does): with m = width / base_width,
each dimension that grows with the width has multiplier m (the others 1), and a tensor with
multipliers (m_in, m_out) gets lr x m_out / m_in under SGD and lr x 1 / m_in under Adam; the
readout's init variance is multiplied by 1 / m. At m = 1 muP is the standard run, so a
learning rate tuned at ``base_width`` is the one to keep (up to the readout's init, zero by
default: see ``MuP``).

The ``mup`` package is unmaintained; this is the table itself, for the feed-forward nets of
``models/`` (MLP, CNN). Not implemented, and refused: the ResNet (its residual branches need
depth-wise multipliers, Yang et al. 2023 "Tensor Programs VI", and BatchNorm is outside Table
3) and the recurrent nets (weights shared over time steps: TP5 gives no rule for them here).
"""

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from models.cnn import CNN
from models.mlp import MLP

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[Iterable], torch.optim.Optimizer]
SUPPORTED = (MLP, CNN)
# (lr multiplier from (m_in, m_out)) per optimizer family, TP5 Table 3; AdamW is Adam's rule.
LR_RULES: dict[tuple[type, ...], Callable[[float, float], float]] = {
    (torch.optim.SGD,): lambda m_in, m_out: m_out / m_in,
    (torch.optim.Adam, torch.optim.AdamW): lambda m_in, m_out: 1.0 / m_in,
}


@dataclass
class ParamGroup:
    """Tensors that share their width multipliers: the inputs' (``m_in``) and outputs'
    (``m_out``) dimension, each m if it grows with the width, else 1."""

    name: str
    m_in: float
    m_out: float
    params: list[Tensor] = field(default_factory=list)


class Standard:
    """PyTorch's usual parametrization: the init strategy's scales and one learning rate."""

    def rescale_init(self, net: nn.Module) -> None:
        """Nothing to rescale: the init strategy's scales are the standard ones."""

    def param_groups(self, net: nn.Module) -> list[ParamGroup] | None:
        """None: one optimizer group of every parameter, any optimizer."""
        return None


class MuP:
    """muP relative to ``base_width`` (see the module's docstring for the rules).

    The init strategy of ``inits/`` runs first: muP's input and hidden rule (variance
    proportional to 1/fan_in) is what ``kaiming_*``, ``lecun_*`` and ``default`` already give,
    so only the readout is rescaled here. Pair it with ``init=kaiming_normal``: ``xavier_*``
    scales the input layer by 2/(fan_in + fan_out), which shrinks with the width and breaks
    muP's input rule.

    Args:
        base_width: the width the hyperparameters were tuned at; the width of a model is its
            readout's fan_in (``model.width`` of the MLP, ``model.hidden`` of the CNN, whose
            channels are taken to scale with it).
        readout_zero_init: zero the readout (the default, as TP5 App. D.2 recommends for
            output layers), or else scale its std by sqrt(base_width / width). Both are muP
            (the readout's init variance may be anything of order 1/n^2 or below), but the
            scaled readout's logits at init, W_0 h, vanish only like width^-1/2: over widths
            64-4096 they dominate the first steps, and in the coordinate check every layer's
            change then drifts down with the width (``tools/coord_check.py``); zero starts
            every width where the infinite-width limit starts. The scaled one keeps muP
            identical to the standard run at the base width.
    """

    def __init__(self, base_width: int = 512, readout_zero_init: bool = True) -> None:
        if base_width < 1:
            raise ValueError(f"parametrization.base_width must be >= 1, got {base_width}")
        self.base_width = base_width
        self.readout_zero_init = readout_zero_init

    def width_multiplier(self, net: nn.Module) -> float:
        """m = width / base_width, for a model muP is implemented for; refuses the others."""
        if not isinstance(net, SUPPORTED):
            raise ValueError(
                f"parametrization=mup is implemented for model=mlp and model=cnn, not for "
                f"{type(net).__name__} (residual branches need depth multipliers, recurrent "
                f"weights a rule for weight sharing): use parametrization=standard"
            )
        return net.head.in_features / self.base_width

    @torch.no_grad()
    def rescale_init(self, net: nn.Module) -> None:
        """The readout's variance times 1/m (Table 3: 1/fan_in^2), or zero."""
        m = self.width_multiplier(net)
        if self.readout_zero_init:
            net.head.weight.zero_()
        else:
            net.head.weight.mul_(1 / math.sqrt(m))
        log.info("muP: width multiplier %.4g (base width %d)", m, self.base_width)

    def param_groups(self, net: nn.Module) -> list[ParamGroup]:
        """Every parameter in the group of its width multipliers, in a fixed order."""
        m = self.width_multiplier(net)
        groups = {
            "input_and_biases": ParamGroup("input_and_biases", 1.0, m),  # one dim grows
            "hidden": ParamGroup("hidden", m, m),
            "readout": ParamGroup("readout", m, 1.0),
            "readout_bias": ParamGroup("readout_bias", 1.0, 1.0),  # classes do not grow
        }
        layers = [x for x in net.modules() if isinstance(x, (nn.Linear, nn.Conv2d))]
        for module in net.modules():
            for name, param in module.named_parameters(recurse=False):
                groups[_role(module, name, layers, net.head)].params.append(param)
        return [g for g in groups.values() if g.params]


def _role(module: nn.Module, name: str, layers: list[nn.Module], head: nn.Module) -> str:
    """Which row of Table 3 a parameter is in; norms' gains and shifts are bias-like."""
    if module is head:
        return "readout" if name == "weight" else "readout_bias"
    if name == "weight" and module in layers[1:]:
        return "hidden"
    return "input_and_biases"


def build_optimizer(
    net: nn.Module,
    optimizer_factory: OptimizerFactory,
    parametrization: Standard | MuP | None = None,
) -> torch.optim.Optimizer:
    """The optimizer of ``net``, with one parameter group per row of the parametrization's
    table, each with its learning rate; what the ``Classifier`` and the population trainer
    call. The weight decay is divided by the same factor, so that lr x weight_decay, the
    decay per step, stays the tuned one (as ``mup``'s MuSGD and MuAdam do)."""
    groups = (parametrization or Standard()).param_groups(net)
    if groups is None:
        return optimizer_factory(net.parameters())
    optimizer = optimizer_factory([{"params": g.params, "name": g.name} for g in groups])
    rule = next((r for kinds, r in LR_RULES.items() if isinstance(optimizer, kinds)), None)
    if rule is None:
        raise ValueError(
            f"parametrization=mup has learning-rate rules for optimizer=sgd, adam and adamw "
            f"(Yang et al. 2022, Table 3), not for {type(optimizer).__name__}"
        )
    for group, spec in zip(optimizer.param_groups, groups, strict=True):
        scale = rule(spec.m_in, spec.m_out)
        group["lr"] *= scale
        group["weight_decay"] /= scale
    return optimizer
