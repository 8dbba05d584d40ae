"""The stacked model of a population: K members of one architecture in one forward pass.

Its input and output have dim 0 = K*B, member k's samples being rows k*B .. (k+1)*B-1, so the
models' own forward code (flatten, pooling, residual adds, padding) runs unchanged on it: only
the modules that hold parameters or buffers are replaced, by the counterparts of
``population.stacked_layers``, which read the members' own tensors at every forward.
"""

import copy
from collections.abc import Sequence
from itertools import chain

from torch import nn
from torch.nn.utils import parametrize

from population.stacked_layers import (
    Stacked,
    StackedBatchNorm1d,
    StackedBatchNorm2d,
    StackedBranchScale,
    StackedConv2d,
    StackedFixupScalars,
    StackedGroupNorm,
    StackedLayerNorm,
    StackedLinear,
)

COUNTERPARTS: dict[type[nn.Module], type[Stacked]] = {
    c.stacks: c
    for c in (
        StackedLinear,
        StackedConv2d,
        StackedBatchNorm1d,
        StackedBatchNorm2d,
        StackedLayerNorm,
        StackedGroupNorm,
        StackedFixupScalars,
        StackedBranchScale,
    )
}
RECURRENT = (nn.RNNBase, nn.RNNCellBase)
ROOT = "net"  # the model's name in a run (``Classifier.net``): paths read as the stats tags do


class NotStackable(ValueError):
    """A module of the architecture has no stacked counterpart."""


def stack(members: Sequence[nn.Module]) -> nn.Module:
    """The stacked model of ``members`` (same architecture, any values): a copy of member 0's
    module tree in which every module holding parameters or buffers is its stacked counterpart,
    referencing the members' modules at the same path; the copy owns no tensor."""
    if not members:
        raise ValueError("a population needs at least one member")
    check_same_architecture(members)
    reasons = unstackable(members[0])
    if reasons:
        supported = ", ".join(sorted(t.__name__ for t in COUNTERPARTS))
        raise NotStackable(f"{reasons[0]}; the stackable modules with tensors: {supported}")
    # The memo maps each tensor to None: the copy's are replaced below, and a model on a GPU is
    # not duplicated only to be dropped.
    tensors = chain(members[0].parameters(), members[0].buffers())
    net = copy.deepcopy(members[0], memo={id(t): None for t in tensors})
    for path, module in list(members[0].named_modules()):
        if not holds_tensors(module):
            continue
        counterpart = COUNTERPARTS[type(module)]([m.get_submodule(path) for m in members])
        counterpart.train(module.training)
        if not path:
            return counterpart
        parent, _, name = path.rpartition(".")
        setattr(net.get_submodule(parent), name, counterpart)
    return net


def unstackable(net: nn.Module) -> list[str]:
    """Why ``net`` cannot be stacked, one line per module (none: it can)."""
    reasons: list[str] = []
    flagged: list[str] = []
    for path, module in net.named_modules():
        if type(module) in COUNTERPARTS or not holds_tensors(module):
            continue
        if any(path.startswith(f"{f}.") for f in flagged):
            continue  # inside a module already named (a parametrization's tensors)
        if isinstance(module, RECURRENT):
            why = "recurrent models train one run at a time"
        elif parametrize.is_parametrized(module):
            why = "a parametrization (spectral_norm) computes its weight"
        else:
            why = "a module type with tensors that population/stacked_layers.py does not know"
        reasons.append(f"{_name(path)}: {type(module).__name__} has no stacked counterpart ({why})")
        flagged.append(path)
    return reasons


def holds_tensors(module: nn.Module) -> bool:
    """Whether ``module`` itself (not its children) has a parameter or buffer."""
    own = chain(module.parameters(recurse=False), module.buffers(recurse=False))
    return next(own, None) is not None


def check_same_architecture(members: Sequence[nn.Module]) -> None:
    """Fail naming the first path where a member's modules differ from member 0's: in type,
    settings (``extra_repr``: stride, eps, momentum...), or its tensors' names, shapes, dtypes."""
    reference = _signatures(members[0])
    for i, member in enumerate(members[1:], start=1):
        signatures = _signatures(member)
        for path in chain(reference, (p for p in signatures if p not in reference)):
            ours = reference.get(path)
            theirs = signatures.get(path)
            if ours != theirs:
                raise ValueError(
                    f"population members must share one architecture: at {_name(path)} member "
                    f"0 has {_describe(ours)}, member {i} has {_describe(theirs)}"
                )


Signature = tuple[type, str, tuple[tuple[str, tuple[int, ...], str], ...]]


def architecture(net: nn.Module) -> tuple[tuple[str, Signature], ...]:
    """What two members must share to be stacked: every module's path, type, settings and
    tensor shapes (hashable: the key of a population)."""
    return tuple(_signatures(net).items())


def _signatures(net: nn.Module) -> dict[str, Signature]:
    def own(module: nn.Module) -> Signature:
        tensors = chain(module.named_parameters(recurse=False), module.named_buffers(recurse=False))
        shapes = tuple((n, tuple(t.shape), str(t.dtype)) for n, t in tensors)
        return type(module), module.extra_repr(), shapes

    return {path: own(module) for path, module in net.named_modules()}


def _describe(signature: Signature | None) -> str:
    if signature is None:
        return "no module"
    cls, settings, tensors = signature
    shapes = ", ".join(f"{n} {list(shape)} {dtype}" for n, shape, dtype in tensors)
    return f"{cls.__name__}({settings})" + (f" with {shapes}" if shapes else "")


def _name(path: str) -> str:
    return f"{ROOT}.{path}" if path else ROOT
