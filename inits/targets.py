"""The one place that knows which tensor of which layer an init strategy writes.

Strategies see weights only through ``weight_targets``: each is a matrix or kernel whose own shape
gives the right fans. An LSTM's stacked ``weight_ih``/``weight_hh`` are split into their four gate
blocks (i, f, g, o), a GRU's into its three (r, z, n), so fans and orthogonality are per gate,
never over the 4H- or 3H-row stack; a vanilla RNN's are single matrices.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
RECURRENT = (nn.RNNBase, nn.RNNCellBase)  # RNN, LSTM, GRU and their cells
NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
LSTM_GATES = ("input", "forget", "cell", "output")  # PyTorch's order of the stacked blocks
GRU_GATES = ("reset", "update", "new")  # r, z, n in PyTorch's order


class NotApplicable(TypeError):
    """A strategy cannot initialize this kind of layer or model (e.g. delta_orthogonal on a
    Linear, fixup on a normalized net)."""


@dataclass(frozen=True)
class WeightTarget:
    """One tensor for a strategy to initialize in place.

    Attributes:
        name: the qualified parameter name, with ``[gate]`` for an LSTM or GRU gate block.
        tensor: the parameter itself or a view into it (a gate block).
        module: the layer that owns it.
        recurrent: True for a recurrent layer's hidden-to-hidden weights.
        layer: the layer index inside a multi-layer ``nn.RNN``/``nn.LSTM``/``nn.GRU``.
    """

    name: str
    tensor: Tensor
    module: nn.Module
    recurrent: bool = False
    layer: int = 0


def fans(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: input and output channels times the receptive field,
    the same definition as ``torch.nn.init``."""
    if tensor.dim() < 2:
        raise ValueError(f"fans need a weight with >= 2 dims, got shape {tuple(tensor.shape)}")
    receptive = tensor[0, 0].numel()
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def weight_targets(model: nn.Module) -> Iterator[WeightTarget]:
    """Every weight of ``model`` that a strategy initializes, layer by layer in forward order."""
    for prefix, module in model.named_modules():
        if getattr(module, "init_exempt", False):  # parameters with a fixed meaning (Fixup's)
            continue
        if isinstance(module, WEIGHTED):
            yield WeightTarget(_join(prefix, "weight"), module.weight, module)
        elif isinstance(module, RECURRENT):
            yield from _recurrent_weights(prefix, module)
        elif not isinstance(module, NORMS) and any(True for _ in module.parameters(recurse=False)):
            names = [n for n, _ in module.named_parameters(recurse=False)]
            raise TypeError(
                f"layer '{prefix}' ({type(module).__name__}) has parameters {names} that no init "
                f"rule covers; supported layers: "
                f"{', '.join(t.__name__ for t in WEIGHTED + RECURRENT + NORMS)}"
            )


def gates(module: nn.Module) -> tuple[str, ...]:
    """The gate blocks stacked in a recurrent layer's weights; () for a vanilla RNN's single
    matrix."""
    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        return LSTM_GATES
    return GRU_GATES if isinstance(module, (nn.GRU, nn.GRUCell)) else ()


def _recurrent_weights(prefix: str, rnn: nn.Module) -> Iterator[WeightTarget]:
    names = gates(rnn)
    for pname, param in rnn.named_parameters(recurse=False):
        if not pname.startswith("weight_"):
            continue
        if param.shape[0] != max(len(names), 1) * rnn.hidden_size:  # an LSTM's proj_size
            yield WeightTarget(_join(prefix, pname), param, rnn)
            continue
        recurrent = pname.startswith("weight_hh")
        layer = int(pname.rsplit("_l", 1)[1]) if "_l" in pname else 0
        if not names:  # a vanilla RNN: one matrix
            yield WeightTarget(_join(prefix, pname), param, rnn, recurrent, layer)
            continue
        for gate, block in zip(names, param.chunk(len(names), dim=0)):
            yield WeightTarget(f"{_join(prefix, pname)}[{gate}]", block, rnn, recurrent, layer)


@torch.no_grad()
def reset_biases_and_norms(model: nn.Module, bias: float | None, forget_bias: float | None) -> None:
    """Set every bias to ``bias`` (None leaves PyTorch's default), every norm's affine to
    weight 1 / bias 0, and an LSTM's forget gate to ``forget_bias`` exactly: PyTorch adds
    ``bias_ih`` and ``bias_hh``, so the value goes into ``bias_ih`` and ``bias_hh`` gets 0.

    A recurrent layer's ``bias`` goes into both vectors, ``bias_ih`` and ``bias_hh``. For a GRU
    the two are not interchangeable in the new gate, ``n = tanh(W_in x + b_in + r * (W_hn h +
    b_hn))``, so both get the value (0 by default: no gate starts biased). ``forget_bias`` is
    the LSTM's alone: a GRU has no forget gate (its update gate z is not mapped onto one) and a
    vanilla RNN no gate at all, so both ignore it."""
    for module in model.modules():
        if isinstance(module, NORMS) and getattr(module, "weight", None) is not None:
            module.weight.fill_(1.0)
            module.bias.fill_(0.0)
        elif isinstance(module, WEIGHTED) and module.bias is not None and bias is not None:
            module.bias.fill_(bias)
        elif isinstance(module, RECURRENT):
            _reset_recurrent_biases(module, bias, forget_bias)


def _reset_recurrent_biases(rnn: nn.Module, bias: float | None, forget_bias: float | None) -> None:
    hidden = rnn.hidden_size
    is_lstm = gates(rnn) == LSTM_GATES
    forget = slice(hidden, 2 * hidden)
    for pname, param in rnn.named_parameters(recurse=False):
        if not pname.startswith("bias_"):
            continue
        if bias is not None:
            param.fill_(bias)
        if forget_bias is not None and is_lstm:
            param[forget] = forget_bias if pname.startswith("bias_ih") else 0.0


@torch.no_grad()
def zero_residual_branches(model: nn.Module) -> None:
    """Zero the last layer of every residual branch through the block's own ``zero_init_last()``
    (Goyal et al. 2017), so every block starts as the identity."""
    blocks = [m for m in model.modules() if hasattr(m, "zero_init_last")]
    if not blocks:
        raise NotApplicable(
            f"zero_init_residual: {type(model).__name__} has no residual blocks "
            f"(modules with zero_init_last()); use it with model=resnet"
        )
    for block in blocks:
        block.zero_init_last()


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
