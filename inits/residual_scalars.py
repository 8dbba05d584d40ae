"""ReZero and SkipInit: a learnable scalar on each residual branch, starting at 0."""

import torch
from torch import Tensor, nn

from inits.targets import NORMS, NotApplicable
from inits.variance_scaling import VarianceScaling


class ReZero(VarianceScaling):
    """ReZero (Bachlechner et al. 2020, "ReZero is All You Need"): every residual block
    computes ``x + alpha * F(x)`` with one learnable scalar ``alpha = 0`` per block, so the
    network starts as the identity through its shortcuts and learns how much of each branch to
    let in; the weights get He init (``VarianceScaling``), with any norm or none.

    ``F`` keeps its random weights: at step 0, of each block, only ``alpha`` gets a gradient,
    ``<dL/dy, F(x)>``, which is why zeroing the branch too (``zero_init_residual``) is refused:
    with ``F = 0`` and ``alpha = 0`` neither would ever get a gradient. The block owns the
    scalar (``add_branch_scale()``, as Fixup's blocks own theirs). SGD keeps its lr 0.05: at
    fixup's 0.02 a ResNet-8 without norms learns slower on MNIST (19.5 % vs 24.5 % test accuracy
    after 100 steps).
    """

    @torch.no_grad()
    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        blocks = [m for m in model.modules() if hasattr(m, "add_branch_scale")]
        self._check(model, blocks)
        super().__call__(model, batch)
        for block in blocks:
            block.add_branch_scale()
        return model

    def _check(self, model: nn.Module, blocks: list[nn.Module]) -> None:
        name = type(self).__name__.lower()
        if not blocks:
            raise NotApplicable(
                f"{name} needs residual blocks (modules with add_branch_scale()); "
                f"{type(model).__name__} has none: use it with model=resnet"
            )
        if self.zero_init_residual:
            raise NotApplicable(
                f"{name} with zero_init_residual=true: a zero branch times a zero scalar gets no "
                f"gradient, so the blocks would never learn; the scalar alone already makes each "
                f"block start as the identity (drop init.zero_init_residual)"
            )


class SkipInit(ReZero):
    """SkipInit (De & Smith 2020, "Batch Normalization Biases Residual Blocks Towards the
    Identity Function in Deep Networks"): the same scalar, 0, at the end of every
    residual branch, as the replacement of batch normalization: what BatchNorm does at init
    (downweight the branches by about 1/sqrt(depth)) without normalizing. It is for
    normalization-free ResNets and refuses a model with norms, as ``fixup`` does.
    """

    def _check(self, model: nn.Module, blocks: list[nn.Module]) -> None:
        norms = sorted({type(m).__name__ for m in model.modules() if isinstance(m, NORMS)})
        if blocks and norms:
            raise NotApplicable(
                f"skipinit is for normalization-free residual nets: use model.norm=none "
                f"(this {type(model).__name__} has {', '.join(norms)}); init=rezero takes any norm"
            )
        super()._check(model, blocks)
