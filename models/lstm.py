"""An LSTM that reads an image row by row: the classic sequential-MNIST recurrent benchmark."""

import torch
from torch import Tensor, nn

from models.layers import check_choice, check_recurrent_sizes


class LayerNormLSTMCell(nn.LSTMCell):
    """LSTM cell with layer normalization as in Ba et al. (2016), sec. 3.1 / eq. 20-22.

    LayerNorm is applied separately to the input and recurrent contributions to the four gate
    pre-activations, and to the cell state before its output ``tanh``. It subclasses
    ``nn.LSTMCell`` so its weights keep PyTorch's names, gate order (i, f, g, o) and default init,
    and every init strategy treats it exactly like ``nn.LSTM``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.norm_ih = nn.LayerNorm(4 * hidden_size)
        self.norm_hh = nn.LayerNorm(4 * hidden_size)
        self.norm_cell = nn.LayerNorm(hidden_size)

    def step(self, x_proj: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One time step given the normalized input projection ``x_proj`` (batch, 4H)."""
        h, c = state
        gates = x_proj + self.norm_hh(h @ self.weight_hh.T) + self.bias_ih + self.bias_hh
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(self.norm_cell(c)), c

    def forward(self, x: Tensor) -> Tensor:  # a whole sequence, unlike nn.LSTMCell's one step
        """Run over ``x`` (batch, time, features); returns all hidden states (batch, time, H)."""
        x_proj = self.norm_ih(x @ self.weight_ih.T)  # all time steps in one matmul
        h = x.new_zeros(x.shape[0], self.hidden_size)
        state = (h, h)
        outputs = []
        for t in range(x.shape[1]):
            state = self.step(x_proj[:, t], state)
            outputs.append(state[0])
        return torch.stack(outputs, dim=1)


class LSTMClassifier(nn.Module):
    """Image rows as time steps -> ``num_layers`` LSTM layers -> last hidden state -> linear.

    ``norm='none'`` uses ``nn.LSTM`` (cuDNN on a GPU); ``norm='layernorm'`` uses
    ``LayerNormLSTMCell`` layers. The cell's nonlinearity is tanh by definition, so ``activation``
    accepts only ``'tanh'`` (inits read tanh's gain from the LSTM modules themselves).
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        hidden_size: int = 128,
        num_layers: int = 1,
        activation: str = "tanh",
        norm: str = "none",
    ) -> None:
        super().__init__()
        check_choice("norm for the LSTM", norm, ("none", "layernorm"))
        check_choice("activation for the LSTM (its cell fixes tanh)", activation, ("tanh",))
        check_recurrent_sizes(hidden_size, num_layers)
        channels, _, width = input_shape
        features = channels * width
        if norm == "layernorm":
            sizes = [features] + [hidden_size] * num_layers
            self.cells = nn.ModuleList(LayerNormLSTMCell(a, hidden_size) for a in sizes[:-1])
            self.lstm = None
        else:
            self.lstm = nn.LSTM(features, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        seq = x.permute(0, 2, 1, 3).flatten(2)  # (batch, rows, channels * width)
        if self.lstm is not None:
            seq, _ = self.lstm(seq)
        else:
            for cell in self.cells:
                seq = cell(seq)
        return self.head(seq[:, -1])
