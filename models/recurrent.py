"""A vanilla RNN and a GRU that read an image row by row, as the LSTM of ``models/lstm.py`` does:
the recurrent layers of the course material (module 2.4, "Recurrent Layers (RNN, LSTM, GRU)")."""

import torch
from torch import Tensor, nn

from models.layers import check_choice, check_recurrent_sizes


class LayerNormRNNCell(nn.RNNCell):
    """Vanilla RNN cell with layer normalization as in Ba et al. (2016), sec. 3.1:
    ``h_t = f(LN(W_hh h_(t-1) + W_ih x_t))``, LayerNorm's shift being the paper's bias ``b``, so
    the cell has no bias of its own. It subclasses ``nn.RNNCell`` so its weights keep PyTorch's
    names and default init, and its ``nonlinearity`` gives the inits their gain."""

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str) -> None:
        super().__init__(input_size, hidden_size, bias=False, nonlinearity=nonlinearity)
        self.norm = nn.LayerNorm(hidden_size)

    def forward(self, x: Tensor) -> Tensor:  # a whole sequence, unlike nn.RNNCell's one step
        """Run over ``x`` (batch, time, features); returns all hidden states (batch, time, H)."""
        act = torch.relu if self.nonlinearity == "relu" else torch.tanh
        x_proj = x @ self.weight_ih.T  # all time steps in one matmul
        h = x.new_zeros(x.shape[0], self.hidden_size)
        outputs = []
        for t in range(x.shape[1]):
            h = act(self.norm(x_proj[:, t] + h @ self.weight_hh.T))
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class RowRecurrentClassifier(nn.Module):
    """Image rows as time steps -> ``self.rnn`` (batch-first, all hidden states) -> last hidden
    state -> linear; subclasses build ``self.rnn``."""

    def __init__(self, rnn: nn.Module, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        seq = self.rnn(x.permute(0, 2, 1, 3).flatten(2))  # (batch, rows, channels * width)
        seq = seq[0] if isinstance(seq, tuple) else seq  # nn.RNN/GRU also return h_n
        return self.head(seq[:, -1])


class RNNClassifier(RowRecurrentClassifier):
    """Elman RNN, ``h_t = f(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)``, ``f`` tanh or relu (ReLU:
    the IRNN of Le et al. 2015, ``init=irnn``). ``norm='none'`` is ``nn.RNN`` (cuDNN on a GPU);
    ``norm='layernorm'`` stacks ``LayerNormRNNCell`` layers (Ba et al. 2016, sec. 3.1)."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 1,
        activation: str = "tanh",
        norm: str = "none",
    ) -> None:
        check_choice("norm for the RNN", norm, ("none", "layernorm"))
        check_choice("activation for the RNN (nn.RNN offers two)", activation, ("tanh", "relu"))
        check_recurrent_sizes(hidden_size, num_layers)
        features = input_shape[0] * input_shape[2]
        if norm == "layernorm":
            sizes = [features] + [hidden_size] * num_layers
            cells = (LayerNormRNNCell(a, hidden_size, activation) for a in sizes[:-1])
            rnn: nn.Module = nn.Sequential(*cells)
        else:
            rnn = nn.RNN(
                features, hidden_size, num_layers, nonlinearity=activation, batch_first=True
            )
        super().__init__(rnn, hidden_size, num_classes)


class GRUClassifier(RowRecurrentClassifier):
    """Gated recurrent unit (Cho et al. 2014) as ``nn.GRU``. Its nonlinearity is tanh by
    definition, so ``activation`` accepts only ``'tanh'``; ``norm`` only ``'none'``: Ba et al.
    (2016) give equations for the vanilla RNN and the LSTM, not for the GRU."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 1,
        activation: str = "tanh",
        norm: str = "none",
    ) -> None:
        check_choice("norm for the GRU", norm, ("none",))
        check_choice("activation for the GRU (its cell fixes tanh)", activation, ("tanh",))
        check_recurrent_sizes(hidden_size, num_layers)
        features = input_shape[0] * input_shape[2]
        rnn = nn.GRU(features, hidden_size, num_layers, batch_first=True)
        super().__init__(rnn, hidden_size, num_classes)
