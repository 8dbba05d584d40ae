"""A plain convolutional network: stages of 3x3 convolutions, each stage halving the resolution."""

from collections.abc import Sequence

from torch import Tensor, nn

from models.layers import activation_layer, channel_norm, feature_norm


class CNN(nn.Module):
    """Stages of ``convs_per_stage`` x (Conv3x3 -> LayerNorm -> activation), then 2x2 max-pooling;
    then a fully connected layer of ``hidden`` units (Linear -> LayerNorm -> activation) and a
    linear classifier, as in LeNet-style networks.

    With ``norm='layernorm'`` each convolution's output is normalized over (C, H, W) before the
    activation, the convolutional form of Ba et al. (2016) (see ``channel_norm``).
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        convs_per_stage: int = 1,
        hidden: int = 128,
        activation: str = "relu",
        norm: str = "none",
    ) -> None:
        super().__init__()
        if not channels or convs_per_stage < 1:
            raise ValueError(
                f"model.channels must be non-empty and model.convs_per_stage >= 1, "
                f"got {list(channels)}, {convs_per_stage}"
            )
        layers: list[nn.Module] = []
        in_ch = input_shape[0]
        for out_ch in channels:
            for _ in range(convs_per_stage):
                layers += [
                    nn.Conv2d(in_ch, out_ch, 3, padding=1),
                    channel_norm(norm, out_ch),
                    activation_layer(activation),
                ]
                in_ch = out_ch
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side_h, side_w = (s // 2 ** len(channels) for s in input_shape[1:])
        if side_h == 0 or side_w == 0:
            fit = min(input_shape[1:]).bit_length() - 1
            raise ValueError(
                f"model.channels={list(channels)} has {len(channels)} stages, each halving the "
                f"{input_shape[1]}x{input_shape[2]} input: at most {fit} fit"
            )
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_ch * side_h * side_w, hidden),
            feature_norm(norm, hidden),
            activation_layer(activation),
        )
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc(self.features(x)))
