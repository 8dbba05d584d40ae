"""The stacked counterparts of the layers that hold parameters or buffers: each computes K
members' layers in one call on the population layout, where dim 0 is K*B and member k's samples
are rows k*B .. (k+1)*B-1.

Each reads its members' own tensors at every forward (``torch.stack`` is differentiable, so each
member's parameters get their own gradients) and owns none itself.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.resnet import BranchScale, FixupScalars


def to_channels(x: Tensor, k: int) -> Tensor:
    """[K*B, C, *S] -> [B, K*C, *S]: the members side by side as channel groups."""
    return x.unflatten(0, (k, -1)).transpose(0, 1).flatten(1, 2)


def from_channels(y: Tensor, k: int) -> Tensor:
    """[B, K*C, *S] -> [K*B, C, *S], the inverse of ``to_channels``."""
    return y.unflatten(1, (k, -1)).transpose(0, 1).flatten(0, 1)


class Stacked(nn.Module):
    """Base of the counterparts.

    ``members`` is a plain tuple, not submodules: the stacked model owns no parameters, so the
    members' optimizers, devices and checkpoints stay each member's own (move the members, not
    the stacked model). ``stacks`` is the class it stands for: code that treats layers by type
    (statistics, hooks) should read ``getattr(module, "stacks", type(module))``.
    """

    stacks: type[nn.Module]

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = tuple(members)

    @property
    def k(self) -> int:
        return len(self.members)

    def stacked(self, name: str) -> Tensor:
        """The members' tensors ``name`` along a new dim 0: [K, *shape]."""
        return torch.stack([getattr(m, name) for m in self.members])

    def split(self, x: Tensor) -> Tensor:
        """[K*B, ...] -> [K, B, ...]."""
        return x.unflatten(0, (self.k, -1))

    def broadcast(self, name: str, x: Tensor, start: int | None = None) -> Tensor:
        """The members' ``name`` shaped to broadcast against ``self.split(x)``, member by
        member: its dims against x's trailing dims, as ``x + p`` aligns them in a single run, or
        against x's dims from ``start`` on (GroupNorm's channels, dim 1)."""
        p = self.stacked(name)
        start = x.dim() - (p.dim() - 1) if start is None else start
        trailing = x.dim() - start - (p.dim() - 1)
        return p.view(self.k, *[1] * start, *p.shape[1:], *[1] * trailing)

    def extra_repr(self) -> str:
        return f"{self.k} x {self.stacks.__name__}({self.members[0].extra_repr()})"


class StackedLinear(Stacked):
    """K Linear layers as one batched matmul, computed transposed: y^T = W x^T + b, so each
    member's weight gradient comes out as a contiguous [out, in] slice that autograd hands to
    ``.grad`` as it is; the straight form x W^T leaves it transposed, and autograd copies
    every member's gradient (about 20 % of a default-MLP step). On this 2-core CPU (K=24,
    B=128, the default 3 x 512 MLP, forward and backward) 120-136 ms against 154-182 ms for
    ``bmm(x, W^T)``; bmm, baddbmm, einsum and matmul were within 5 % of each other, and
    ``vmap(F.linear)`` was slower in whole-model steps."""

    stacks = nn.Linear

    def forward(self, x: Tensor) -> Tensor:
        xs = x.reshape(self.k, -1, x.shape[-1]).transpose(1, 2)  # [K, in, B]
        weight = self.stacked("weight")  # [K, out, in]
        if self.members[0].bias is None:
            y = torch.bmm(weight, xs)
        else:
            y = torch.baddbmm(self.stacked("bias").unsqueeze(2), weight, xs)
        return y.transpose(1, 2).reshape(*x.shape[:-1], -1)  # [K*B, out], contiguous


class StackedConv2d(Stacked):
    """K Conv2d layers. On a GPU, one grouped convolution: the members' inputs side by side as
    channel groups, [B, K*C, H, W], their weights concatenated, K times the original groups
    (``vmap(F.conv2d)`` lowers to the same call). On the CPU, each member's own convolution on
    its rows: on this 2-core CPU (K=24, B=128, the CNN's two convs, forward and backward) that
    took 455 and 528 ms against 600 and 852 ms grouped (the layout is transposed in and out)
    and 664 and 918 ms with vmap."""

    stacks = nn.Conv2d
    grouped_on_cpu = False  # tests set it to check the grouped path on the CPU

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu" and not self.grouped_on_cpu:
            # forward(), not __call__: hooks watch the stacked module, not the members
            return torch.cat([c.forward(x_k) for c, x_k in zip(self.members, self.split(x))])
        conv = self.members[0]
        x = to_channels(x, self.k)
        padding = conv.padding
        if conv.padding_mode != "zeros":  # as nn.Conv2d does it
            x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
            padding = 0
        weight = self.stacked("weight").flatten(0, 1)
        bias = None if conv.bias is None else self.stacked("bias").flatten()
        groups = conv.groups * self.k
        y = F.conv2d(x, weight, bias, conv.stride, padding, conv.dilation, groups)
        return from_channels(y, self.k)


class StackedBatchNorm(Stacked):
    """BatchNorm over the members' channels side by side ([B, K*C, ...]): each member gets its
    own batch statistics (over its B samples) and, in eval mode, uses its own running ones.

    In training, ``F.batch_norm`` with fresh buffers and momentum 1 yields the batch statistics
    (mean, unbiased variance); each member's own buffers then move towards them by its momentum
    (``1 / num_batches_tracked`` when ``momentum=None``), written in place: buffers shared as
    views of one stacked tensor would lose that sharing on the members' ``.to()``."""

    def forward(self, x: Tensor) -> Tensor:
        bn = self.members[0]
        xc = to_channels(x, self.k)
        weight = self.stacked("weight").flatten() if bn.affine else None
        bias = self.stacked("bias").flatten() if bn.affine else None
        if not self.training and bn.track_running_stats:
            mean = self.stacked("running_mean")
            var = self.stacked("running_var")
            y = F.batch_norm(xc, mean.flatten(), var.flatten(), weight, bias, False, 0.0, bn.eps)
            return from_channels(y, self.k)
        mean = var = None
        if self.training and bn.track_running_stats:
            mean = bn.running_mean.new_zeros(xc.shape[1])
            var = bn.running_mean.new_zeros(xc.shape[1])
        y = F.batch_norm(xc, mean, var, weight, bias, True, 1.0, bn.eps)
        if mean is not None:
            self._update_running(mean.view(self.k, -1), var.view(self.k, -1))
        return from_channels(y, self.k)

    @torch.no_grad()
    def _update_running(self, mean: Tensor, var: Tensor) -> None:
        """Each member's running statistics and batch count, as its own forward updates them."""
        counts = [m.num_batches_tracked for m in self.members]
        torch._foreach_add_(counts, 1)
        momentum = self.members[0].momentum
        if momentum is None:  # a cumulative average: per member, as counts may differ
            momentum = torch.stack(counts).reciprocal().unsqueeze(1)
        for name, batch in (("running_mean", mean), ("running_var", var)):
            new = self.stacked(name).lerp_(batch, momentum)
            torch._foreach_copy_([getattr(m, name) for m in self.members], list(new.unbind(0)))


class StackedBatchNorm1d(StackedBatchNorm):
    stacks = nn.BatchNorm1d


class StackedBatchNorm2d(StackedBatchNorm):
    stacks = nn.BatchNorm2d


class StackedLayerNorm(Stacked):
    """LayerNorm is per sample, so one call normalizes every member; the affine is per member."""

    stacks = nn.LayerNorm

    def forward(self, x: Tensor) -> Tensor:
        norm = self.members[0]
        y = self.split(F.layer_norm(x, norm.normalized_shape, None, None, norm.eps))
        if norm.weight is not None:
            y = y * self.broadcast("weight", x)
        if norm.bias is not None:
            y = y + self.broadcast("bias", x)
        return y.flatten(0, 1)


class StackedGroupNorm(Stacked):
    """GroupNorm is per sample too (the CNN's and ResNet's LayerNorm is ``GroupNorm(1, C)``);
    the per-channel affine is per member."""

    stacks = nn.GroupNorm

    def forward(self, x: Tensor) -> Tensor:
        norm = self.members[0]
        y = self.split(F.group_norm(x, norm.num_groups, None, None, norm.eps))
        if norm.affine:
            y = y * self.broadcast("weight", x, start=1) + self.broadcast("bias", x, start=1)
        return y.flatten(0, 1)


class StackedFixupScalars(Stacked):
    """Fixup's scalar biases and multiplier, each member's applied to its own rows."""

    stacks = FixupScalars

    def shift(self, x: Tensor, name: str) -> Tensor:
        return (self.split(x) + self.broadcast(name, x)).flatten(0, 1)

    def rescale(self, x: Tensor) -> Tensor:
        return (self.split(x) * self.broadcast("scale", x)).flatten(0, 1)


class StackedBranchScale(Stacked):
    """ReZero's / SkipInit's branch multiplier, each member's applied to its own rows."""

    stacks = BranchScale

    def forward(self, branch: Tensor) -> Tensor:
        return (self.split(branch) * self.broadcast("alpha", branch)).flatten(0, 1)
