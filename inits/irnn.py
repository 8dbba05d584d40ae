"""IRNN: a ReLU RNN whose recurrent weights start as the identity."""

from typing import Any

import torch
from torch import Tensor, nn

from inits.strategy import InitStrategy
from inits.targets import NotApplicable, WeightTarget

VANILLA = (nn.RNN, nn.RNNCell)  # not RNNBase: an LSTM's or GRU's gates have no identity meaning


class IRNN(InitStrategy):
    """Le, Jaitly & Hinton (2015), "A Simple Way to Initialize Recurrent Networks of Rectified
    Linear Units", sec. 2: a vanilla RNN with ReLU units, each hidden-to-hidden matrix
    ``scale * I`` (1, "or its scaled version" for tasks with shorter dependencies), input weights
    ~ N(0, ``input_std``^2) with ``input_std`` 0.001 as in their experiments (sec. 4) and Keras's
    reproduction ``examples/mnist_irnn.py``, biases 0, so at the start h_t = relu(h_(t-1) + ...)
    copies the state forward and back-propagated errors neither vanish nor explode.

    Only the RNN's weights have a rule here; the rest (the classifier) go to ``fallback``. The
    paper is about ReLU units: an RNN with tanh, or any model without ``nn.RNN``, is refused.
    """

    fixed_gain_reason = "not used: the identity and input_std are absolute"

    def __init__(self, scale: float = 1.0, input_std: float = 0.001, **shared: Any) -> None:
        if input_std < 0:
            raise ValueError(f"init.input_std must be >= 0, got {input_std}")
        super().__init__(**shared)
        self.scale = scale
        self.input_std = input_std

    @torch.no_grad()
    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        rnns = [m for m in model.modules() if isinstance(m, VANILLA)]
        if not rnns:
            raise NotApplicable(
                f"irnn initializes a vanilla ReLU RNN and {type(model).__name__} has none: use "
                f"it with model=rnn model.activation=relu"
            )
        others = sorted({m.nonlinearity for m in rnns} - {"relu"})
        if others:
            raise NotApplicable(
                f"irnn is for ReLU RNNs (Le et al. 2015) and this one uses {', '.join(others)}: "
                f"use it with model=rnn model.activation=relu"
            )
        return super().__call__(model, batch)

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        if not isinstance(target.module, VANILLA):
            raise NotApplicable(
                f"irnn has rules only for an RNN's weights, not for "
                f"a {type(target.module).__name__}"
            )
        if target.recurrent:
            nn.init.eye_(target.tensor).mul_(self.scale)
        else:
            nn.init.normal_(target.tensor, 0.0, self.input_std)
