"""Fixup: residual networks that train without normalization, by init alone."""

import torch
from torch import Tensor, nn

from inits.targets import NORMS, NotApplicable
from inits.variance_scaling import VarianceScaling


class Fixup(VarianceScaling):
    """Fixed-update initialization (Zhang, Dauphin & Ma 2019, "Fixup Initialization", sec. 3):

    1. the classification layer and the last layer of each residual branch are zero;
    2. every other layer gets He init, and the layers inside the branches are scaled by
       ``L^(-1/(2m-2))`` for L branches of m layers (m = 2 here: ``1/sqrt(L)``);
    3. each branch gets scalar biases (0) and a multiplier (1), added by the block's own
       ``add_fixup_scalars()``.

    It applies to normalization-free models whose blocks offer ``branch_layers()`` and
    ``add_fixup_scalars()``: with a norm after each conv the branch scaling would be undone.
    """

    @torch.no_grad()
    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        blocks = [m for m in model.modules() if hasattr(m, "branch_layers")]
        if not blocks:
            raise NotApplicable(
                f"fixup needs residual blocks (modules with branch_layers()); "
                f"{type(model).__name__} has none: use it with model=resnet model.norm=none"
            )
        norms = sorted({type(m).__name__ for m in model.modules() if isinstance(m, NORMS)})
        if norms:
            raise NotApplicable(
                f"fixup is for normalization-free residual nets: use model.norm=none "
                f"(this {type(model).__name__} has {', '.join(norms)})"
            )
        super().__call__(model, batch)
        for block in blocks:
            layers = block.branch_layers()
            m = len(layers)
            for layer in layers[:-1]:
                layer.weight.mul_(len(blocks) ** (-1.0 / (2 * m - 2)))
            nn.init.zeros_(layers[-1].weight)
            block.add_fixup_scalars()
        classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(classifier.weight)
        nn.init.zeros_(classifier.bias)
        return model
