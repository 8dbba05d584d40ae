"""Which modules of a model the statistics watch."""

from dataclasses import dataclass

from torch import nn

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.LSTM, nn.LSTMCell)
ACTIVATIONS = {
    nn.ReLU: None,
    nn.LeakyReLU: None,
    nn.GELU: None,
    nn.SELU: None,
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
}


@dataclass(frozen=True)
class Watched:
    """A module whose output the statistics follow: its path, and 'tanh' or 'sigmoid' when it
    is a saturating activation."""

    name: str
    module: nn.Module
    bounded: str | None = None


def watched_modules(model: nn.Module) -> list[Watched]:
    """Every layer output (Linear, Conv, LSTM: the pre-activation), every activation output,
    and every residual block output (modules with ``zero_init_last``)."""
    return [
        Watched(name, module, ACTIVATIONS.get(type(module)))
        for name, module in model.named_modules()
        if isinstance(module, LAYERS)
        or type(module) in ACTIVATIONS
        or hasattr(module, "zero_init_last")
    ]


def depth(tag: str) -> int:
    """The forward position in a statistics tag ``NN.path`` (for sorting past 99 layers)."""
    return int(tag.split(".", 1)[0])
