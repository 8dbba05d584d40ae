"""The inits of residual nets (Fixup, zero_init_residual with any strategy, ReZero, SkipInit):
each block starts as its shortcut, as the papers' formulas say, and what cannot hold is refused
by name."""

import math
import re

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from inits import (
    Fixup,
    NotApplicable,
    ReZero,
    SkipInit,
    VarianceScaling,
    apply_init,
    weight_targets,
)
from models import CNN, MLP, ResNet
from tests.support import CONF_DIR, reference_gain


def test_fixup_follows_the_paper() -> None:
    model = ResNet((1, 28, 28), 10, depth=20, norm="none")
    Fixup()(model)
    blocks = list(model.blocks)
    for block in blocks:
        assert torch.all(block.conv2.weight == 0)
        fan_in = block.conv1.weight[0].numel()
        # He et al. (2015) scaled by L^(-1 / (2m - 2)), m = 2 layers per branch (Fixup, rule 2)
        expected = reference_gain("relu") / math.sqrt(fan_in) / math.sqrt(len(blocks))
        assert block.conv1.weight.std().item() == pytest.approx(expected, rel=0.15)
        assert block.fixup.scale.item() == 1 and block.fixup.bias1a.item() == 0
    assert torch.all(model.head[-1].weight == 0)
    assert torch.all(model(torch.randn(4, 1, 28, 28)) == 0)
    assert sum(1 for n, _ in model.named_parameters() if "fixup" in n) == 5 * len(blocks)


def test_fixup_refuses_a_model_without_residual_blocks() -> None:
    with pytest.raises(NotApplicable, match="use it with model=resnet"):
        Fixup()(MLP((1, 28, 28), 10))


def test_fixup_refuses_a_resnet_with_normalization() -> None:
    with pytest.raises(NotApplicable, match=r"use model.norm=none \(this ResNet has BatchNorm2d\)"):
        Fixup()(ResNet((1, 28, 28), 10, depth=8, norm="batchnorm"))


@pytest.mark.parametrize("norm", ["none", "layernorm"])
def test_zero_init_residual_with_any_strategy(norm: str) -> None:
    model = ResNet((1, 28, 28), 10, depth=8, norm=norm)
    VarianceScaling(zero_init_residual=True)(model)
    for block in model.blocks:
        last = block.norm2 if norm == "layernorm" else block.conv2
        assert torch.all(last.weight == 0)
        assert torch.any(block.conv1.weight != 0)
    x = torch.randn(2, 16, 28, 28).relu()
    torch.testing.assert_close(model.blocks[0](x), x)  # each block starts as the identity


INIT_FILES = sorted(p.stem for p in (CONF_DIR / "init").glob("*.yaml"))

# The combinations that cannot hold: each is refused by name, before training.
ZERO_BRANCH = "with zero_init_residual=true: a zero branch times a zero scalar gets no gradient"

REFUSED = {
    ("fixup", "batchnorm"): "fixup is for normalization-free residual nets: use model.norm=none",
    ("spectral init.parametrize=true", "none"): "cannot keep 'blocks.0.conv2.weight' at zero",
    **{("irnn", n): "use it with model=rnn model.activation=relu" for n in ("none", "batchnorm")},
    **{(i, n): ZERO_BRANCH for i in ("rezero", "skipinit") for n in ("none", "batchnorm")},
    ("skipinit", "batchnorm"): "skipinit is for normalization-free residual nets",
}


@pytest.mark.parametrize("norm", ["none", "batchnorm"])
@pytest.mark.parametrize("init", [*INIT_FILES, "spectral init.parametrize=true"])
def test_zero_init_residual_with_every_strategy(make_cfg, init: str, norm: str) -> None:
    name, *extra = init.split()
    strategy = instantiate(make_cfg(f"init={name}", "++init.zero_init_residual=true", *extra).init)
    model, batch = ResNet((1, 28, 28), 10, depth=8, norm=norm), torch.randn(32, 1, 28, 28)
    if (init, norm) in REFUSED:
        with pytest.raises(NotApplicable, match=re.escape(REFUSED[init, norm])):
            apply_init(strategy, model, batch)
        return
    apply_init(strategy, model, batch)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    x = model.stem(batch)
    for block in model.blocks:  # each block starts as the identity (its shortcut)
        y = block(x)
        torch.testing.assert_close(y, nn.functional.relu(block.shortcut(x)))
        x = y


@pytest.mark.parametrize("strategy", [ReZero, SkipInit])
def test_branch_scalars_start_at_zero_with_he_weights(strategy: type) -> None:
    model = ResNet((1, 28, 28), 10, depth=20, norm="none")
    strategy()(model)
    for block in model.blocks:
        assert block.branch_scale.alpha.item() == 0 and block.branch_scale.alpha.requires_grad
        fan_in = block.conv2.weight[0].numel()
        expected = reference_gain("relu") / math.sqrt(fan_in)  # He et al. (2015)
        assert block.conv2.weight.std().item() == pytest.approx(expected, rel=0.1)
    assert not any("branch_scale" in t.name for t in weight_targets(model))  # left alone
    x = torch.randn(2, 16, 28, 28).relu()
    torch.testing.assert_close(model.blocks[0](x), x)  # the block starts as its shortcut
    loss = model(torch.randn(4, 1, 28, 28)).square().sum()
    loss.backward()  # only the scalars learn at step 0: the branches are multiplied by 0
    assert all(b.branch_scale.alpha.grad.abs() > 0 for b in model.blocks)
    assert all(torch.all(b.conv1.weight.grad == 0) for b in model.blocks)


def test_rezero_takes_any_norm_and_skipinit_refuses_one() -> None:
    model = ResNet((1, 28, 28), 10, depth=8, norm="batchnorm")
    ReZero()(model)
    assert model.blocks[0].branch_scale.alpha.item() == 0
    with pytest.raises(
        NotApplicable,
        match=r"skipinit is for normalization-free residual nets: use model.norm=none "
        r"\(this ResNet has BatchNorm2d\); init=rezero takes any norm",
    ):
        SkipInit()(ResNet((1, 28, 28), 10, depth=8, norm="batchnorm"))


@pytest.mark.parametrize("strategy", [ReZero, SkipInit])
@pytest.mark.parametrize("model", [MLP((1, 28, 28), 10), CNN((1, 28, 28), 10)])
def test_branch_scalars_refuse_a_model_without_residual_blocks(strategy, model) -> None:
    name = strategy.__name__.lower()
    with pytest.raises(
        NotApplicable, match=rf"{name} needs residual blocks .* {type(model).__name__} has none"
    ):
        strategy()(model)


def test_branch_scalars_refuse_a_zeroed_branch() -> None:
    with pytest.raises(NotApplicable, match="a zero branch times a zero scalar gets no gradient"):
        ReZero(zero_init_residual=True)(ResNet((1, 28, 28), 10, depth=8, norm="batchnorm"))
