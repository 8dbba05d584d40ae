"""The CIFAR residual network of He et al. (2016), sec. 4.2: depth 6n+2, identity shortcuts only."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.layers import activation_layer, channel_norm


class FixupScalars(nn.Module):
    """Fixup's scalar biases before each conv and activation of a branch and its scalar multiplier
    (Zhang et al. 2019, sec. 3, rule 3). Created at their paper values, 0 and 1, so adding them
    leaves the block's function unchanged; init strategies leave them alone."""

    init_exempt = True

    def __init__(self) -> None:
        super().__init__()
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = (
            nn.Parameter(torch.zeros(1)) for _ in range(4)
        )
        self.scale = nn.Parameter(torch.ones(1))

    def shift(self, x: Tensor, name: str) -> Tensor:
        """``x`` plus the bias ``name`` (``bias1a``, ``bias1b``, ``bias2a`` or ``bias2b``): a
        method, not a read of the parameter, so a population's stacked copy can add each
        member's own (``population/stacked_layers.py``)."""
        return x + getattr(self, name)

    def rescale(self, x: Tensor) -> Tensor:
        return x * self.scale


class BranchScale(nn.Module):
    """A learnable scalar that multiplies a residual branch: ReZero's alpha (Bachlechner et al.
    2020) and SkipInit's (De & Smith 2020). Created at 0, so the block starts as its shortcut;
    init strategies leave it alone."""

    init_exempt = True

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, branch: Tensor) -> Tensor:
        return branch * self.alpha


class BasicBlock(nn.Module):
    """conv3x3 -> norm -> act -> conv3x3 -> norm, added to the shortcut, then act.

    The shortcut is always parameter-free: the identity, or when the block halves the resolution,
    a stride-2 subsample padded with zero channels ("option A" of He et al. 2016), so every
    shortcut carries the signal unchanged, which is what makes the init of the branch matter.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, activation: str, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.norm1 = channel_norm(norm, out_ch)
        self.act1 = activation_layer(activation)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.norm2 = channel_norm(norm, out_ch)
        self.act2 = activation_layer(activation)
        self.stride = stride
        self.extra_channels = out_ch - in_ch
        self.fixup: FixupScalars | None = None
        self.branch_scale: BranchScale | None = None

    def branch_layers(self) -> list[nn.Conv2d]:
        """The weight layers of the residual branch, in order (Fixup's m = 2)."""
        return [self.conv1, self.conv2]

    def add_fixup_scalars(self) -> None:
        self.fixup = FixupScalars().to(self.conv1.weight.device)

    def add_branch_scale(self) -> None:
        """Multiply the branch by a learnable scalar, 0 at first (ReZero, SkipInit)."""
        self.branch_scale = BranchScale().to(self.conv1.weight.device)

    def zero_init_last(self) -> None:
        """Zero the last layer of the branch so the block starts as the identity (Goyal et al.
        2017): the last norm's scale when there is one, else the last conv's weight; its bias
        too, which PyTorch's default (``init=default``) leaves nonzero."""
        last = self.conv2 if isinstance(self.norm2, nn.Identity) else self.norm2
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)

    def shortcut(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels)) if self.extra_channels else x

    def forward(self, x: Tensor) -> Tensor:
        f = self.fixup
        if f is None:
            branch = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        else:
            out = self.act1(f.shift(self.norm1(self.conv1(f.shift(x, "bias1a"))), "bias1b"))
            branch = f.shift(f.rescale(self.norm2(self.conv2(f.shift(out, "bias2a")))), "bias2b")
        if self.branch_scale is not None:
            branch = self.branch_scale(branch)
        return self.act2(branch + self.shortcut(x))


class ResNet(nn.Module):
    """Stem conv, three stages of ``(depth - 2) / 6`` blocks of width w, 2w, 4w, average pooling
    and a linear classifier. ``norm`` is applied where the paper has BatchNorm (after each
    convolution): ``batchnorm`` as in the paper, ``layernorm``, or ``none`` for the
    normalization-free network that Fixup is made for."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        depth: int = 20,
        width: int = 16,
        activation: str = "relu",
        norm: str = "none",
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"model.depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 56...), got {depth}"
            )
        blocks_per_stage = (depth - 2) // 6
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, padding=1),
            channel_norm(norm, width),
            activation_layer(activation),
        )
        blocks = []
        in_ch = width
        for stage in range(3):
            out_ch = width * 2**stage
            for i in range(blocks_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_ch, out_ch, stride, activation, norm))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_ch, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))
