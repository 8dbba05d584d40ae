"""Which modules and parameters of a model the statistics watch, and how their tags sort.

A population (``population.module.Population``) is watched as K single runs: its stacked
``net`` (one module per layer, each module standing for its members' layers: ``stacks`` names
the class it stacks) for the outputs, each member's own ``net`` for the parameters, under the
paths a single run has (``net.layers.0.0``)."""

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from callbacks.members import TrainsMembers

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase, nn.RNNCellBase)
# Layers whose outputs hold their units in the last dim: Linear (B, ..., F), RNN/LSTM/GRU
# (B, T, H) or (T, B, H), their cells (B, H) or LayerNorm*Cell's (B, T, H). Convolutions have
# them in dim 1.
LAYER_OUTPUT = "layer output"  # the kind of a Linear/Conv/recurrent output
FEATURES_LAST = (nn.Linear, nn.RNNBase, nn.RNNCellBase)
ACTIVATIONS = {
    nn.ReLU: None,
    nn.LeakyReLU: None,
    nn.GELU: None,
    nn.SELU: None,
    nn.Tanh: "tanh",
    # Bounded by +-1 like tanh, so |x| > 0.99 counts as saturated (its slope there, (1 - |x|)^2,
    # is below 1e-4); it needs |pre-activation| > 99 to get there, so a high fraction means
    # exploding inputs (Glorot & Bengio 2010, sec. 3.2: softsign saturates less than tanh).
    nn.Softsign: "tanh",
    nn.Sigmoid: "sigmoid",
}
MIN_DIGITS = 3  # ResNet-56 watches 138 modules, a 50-layer MLP 101
# TensorBoard lists tag groups (the part before the first '/') in natural order, digits and '/'
# first, then by character code: 'watched.' comes after 'epoch', 'lr-*', 'test', 'train' and
# 'val', so loss, accuracy and learning rate open the Time Series and Scalars dashboards.
STAT_PREFIX = "watched."


@dataclass(frozen=True)
class Watched:
    """A module whose output the statistics follow: its path, 'tanh' or 'sigmoid' when it is a
    saturating activation, and the dim of its output that holds the units (``act_dead_frac``)."""

    name: str
    module: nn.Module
    bounded: str | None = None
    unit_dim: int = 1

    @property
    def kind(self) -> str:
        """Which series of a depth figure the output belongs to: a layer's (Linear, Conv,
        LSTM), an activation's, or a residual block's; mixed in one line they zigzag."""
        cls = module_class(self.module)
        if issubclass(cls, LAYERS):
            return LAYER_OUTPUT
        return "activation output" if cls in ACTIVATIONS else "block output"

    @property
    def label(self) -> str:
        """Its tick label in the figures: path without the model's prefix, and class."""
        return f"{short_path(self.name)} {module_class(self.module).__name__}"


def module_class(module: nn.Module) -> type:
    """The class a module acts as: a stacked module's ``stacks`` (the layer class whose
    members it runs), else its own."""
    cls = getattr(module, "stacks", None)
    return cls if isinstance(cls, type) else type(module)


def population_size(module: TrainsMembers) -> int:
    """K: the members a LightningModule trains at once (1 for a single run)."""
    return len(module.members)


def watched_root(module: TrainsMembers) -> nn.Module:
    """The module tree whose outputs the statistics watch, under the path ``net``: a single
    run's model, or a population's stacked one (its member nets run no forward of their
    own)."""
    return nn.ModuleDict({"net": module.net})


def member_roots(module: TrainsMembers) -> list[nn.Module]:
    """Per member, the module tree that holds its trained parameters, under the single run's
    paths (``net.head.weight``)."""
    return [nn.ModuleDict({"net": member.net}) for member in module.members]


def short_path(path: str) -> str:
    """A module or parameter path without the model's own prefix, for the figures' ticks."""
    return path.removeprefix("net.") or "model"


def watched_modules(model: nn.Module) -> list[Watched]:
    """Every layer output (Linear, Conv, LSTM: the pre-activation; the LSTM's h), every
    activation output, and every residual block output (modules with ``zero_init_last``).

    An activation or a block works elementwise on what the last layer before it (in module
    order) produced, so it takes that layer's unit dim."""
    watched = []
    unit_dim = 1
    for name, module in model.named_modules():
        cls = module_class(module)
        if issubclass(cls, LAYERS):
            unit_dim = -1 if issubclass(cls, FEATURES_LAST) else 1
        elif not (cls in ACTIVATIONS or hasattr(module, "zero_init_last")):
            continue
        watched.append(Watched(name, module, ACTIVATIONS.get(cls), unit_dim))
    return watched


@dataclass(frozen=True)
class WatchedParameter:
    """A tensor a layer uses, under the name users know (``net.head.weight``, also when a
    parametrization such as ``spectral_norm`` computes it), with the parameter the optimizer
    trains (``parametrizations.weight.original`` then) and the watched module whose forward
    position prefixes its tags."""

    name: str
    module: nn.Module
    attr: str
    param: nn.Parameter
    anchor: str

    @property
    def parametrized(self) -> bool:
        return parametrize.is_parametrized(self.module, self.attr)

    def value(self) -> Tensor:
        """The tensor the layer uses. A parametrization runs in eval mode, so reading it
        changes no state (``spectral_norm`` would otherwise take a power-iteration step)."""
        if not self.parametrized:
            return self.param.detach()
        chain = self.module.parametrizations[self.attr]
        training = chain.training
        chain.eval()
        try:
            with torch.no_grad():
                return getattr(self.module, self.attr)
        finally:
            chain.train(training)


def watched_parameters(model: nn.Module) -> list[WatchedParameter]:
    """Every trained tensor, once. A parameter of a watched module is anchored to that module;
    one of another module (a norm, a model's own scalars) to the nearest watched module before
    it in module order (a norm to the layer it follows), or to the first watched one."""
    order = [w.name for w in watched_modules(model)]
    watched = set(order)
    anchor = order[0] if order else ""
    found = []
    seen = set()
    for name, module in model.named_modules():
        if name in watched:
            anchor = name
        if isinstance(module, parametrize.ParametrizationList) and hasattr(module, "original"):
            continue  # reported under the name of the tensor it computes, below
        tensors = list(module.named_parameters(recurse=False))
        if parametrize.is_parametrized(module):
            chains = module.parametrizations.items()
            tensors += [(n, c.original) for n, c in chains if hasattr(c, "original")]
        for attr, param in tensors:
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                path = f"{name}.{attr}" if name else attr
                found.append(WatchedParameter(path, module, attr, param, anchor))
    return found


def layer_tag(position: int, name: str, digits: int) -> str:
    """``NNN.path``: the forward position, zero-padded so TensorBoard's alphabetical order is
    depth order, then the module or parameter path."""
    return f"{position:0{digits}d}.{name or 'model'}"


def tag_digits(model: nn.Module) -> int:
    """Digits enough for every forward position of ``model``: at least ``MIN_DIGITS``, so one
    layer keeps its tag across the runs of a sweep over depth."""
    return max(MIN_DIGITS, len(str(len(watched_modules(model)) - 1)))


def depth(tag: str) -> int:
    """The forward position in a statistics tag ``NNN.path`` (for sorting numerically)."""
    return int(tag.split(".", 1)[0])


def stat_tag(stat: str, layer: str) -> str:
    """The TensorBoard tag of ``stat`` of ``layer`` (``NNN.path``), e.g.
    ``watched.act_std/003.net.layers.1.0``: grouped by statistic, so a group's cards are its
    layers in depth order, each card comparing the runs; the prefix sorts after the training
    metrics (``STAT_PREFIX``)."""
    return f"{STAT_PREFIX}{stat}/{layer}"


def parse_stat_tag(tag: str) -> tuple[str, str] | None:
    """``(stat, layer)`` of a tag written by ``stat_tag``; None for any other tag."""
    if not tag.startswith(STAT_PREFIX) or "/" not in tag:
        return None
    stat, layer = tag[len(STAT_PREFIX) :].split("/", 1)
    return stat, layer
