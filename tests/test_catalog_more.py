"""The inits and the activation beyond the classic catalog (softsign, sparse, trunc_normal,
ReZero, SkipInit), each checked against its formula and trained end to end."""

import math
from statistics import NormalDist

import pytest
import torch
from hydra.utils import instantiate
from scipy import integrate
from torch import nn

from callbacks.watched import watched_modules
from inits import (
    Normal,
    NotApplicable,
    ReZero,
    SkipInit,
    Sparse,
    VarianceScaling,
    model_gain,
    sparse_rows_,
    truncated_normal_,
    weight_targets,
)
from inits.random import truncated_std
from inits.samplers import _TRUNCATED_STD
from inits.targets import WEIGHTED
from models import CNN, MLP, ResNet
from tests.test_catalog import all_models, matrices
from train import train


def test_softsign_gain_is_one_over_its_second_moment() -> None:
    def density(z: float) -> float:
        return (z / (1 + z)) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    second_moment = 2 * integrate.quad(density, 0, math.inf, epsabs=1e-12)[0]
    torch.manual_seed(0)
    sampled = nn.functional.softsign(torch.randn(4_000_000, dtype=torch.float64)).square().mean()
    assert sampled.item() == pytest.approx(second_moment, rel=2e-3)
    gain, label = model_gain(MLP((1, 28, 28), 10, activation="softsign"), "test")
    assert label == "Softsign"
    assert gain == pytest.approx(1 / math.sqrt(second_moment), rel=1e-4)
    assert gain == pytest.approx(2.3375, abs=1e-3)


def test_softsign_gain_keeps_unit_preactivations_through_depth() -> None:
    torch.manual_seed(0)
    model = MLP((512,), 10, depth=30, width=512, activation="softsign")
    VarianceScaling()(model)  # gain from the Softsign modules
    x = torch.randn(512, 512) / 2.3375  # an input of second moment E[softsign(z)^2]
    for layer in model.layers[:-1]:
        x = layer[0](x)  # the Linear: the pre-activation, unit variance at every depth
        assert x.std().item() == pytest.approx(1.0, abs=0.15)
        x = layer[2](layer[1](x))


def test_softsign_saturation_is_watched_like_tanh() -> None:
    model = MLP((1, 28, 28), 10, activation="softsign")
    bounded = {type(w.module): w.bounded for w in watched_modules(model)}
    assert bounded[nn.Softsign] == "tanh"


@pytest.mark.parametrize("model", all_models(), ids=lambda m: type(m).__name__)
def test_sparse_gives_exactly_k_nonzero_inputs_per_unit(model: nn.Module) -> None:
    Sparse(k=15)(model)
    nonzero = []
    for name, w in matrices(model):  # a conv's output channel, an LSTM gate's row: one row
        counts = (w != 0).sum(dim=1)
        assert torch.all(counts == min(15, w.shape[1])), name
        nonzero.append(w[w != 0])
    values = torch.cat(nonzero)
    assert values.std().item() == pytest.approx(1.0, rel=0.03) and abs(values.mean()) < 0.03
    assert all(torch.all(m.bias == 0) for m in model.modules() if isinstance(m, WEIGHTED))


def test_sparse_values_are_standard_normal_and_positions_uniform() -> None:
    torch.manual_seed(0)
    w = sparse_rows_(torch.empty(4000, 60), k=15)
    values = w[w != 0]
    assert values.numel() == 4000 * 15
    ordered = torch.sort(values).values
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):  # the quantiles of N(0, 1)
        expected = NormalDist().inv_cdf(q)
        assert ordered[int(q * values.numel())].item() == pytest.approx(expected, abs=0.02)
    per_column = (w != 0).float().mean(dim=0)  # each input chosen with probability 15/60
    assert torch.all((per_column - 0.25).abs() < 0.03)


def test_sparse_layer_narrower_than_k_is_dense() -> None:
    w = sparse_rows_(torch.empty(20, 4, 1, 2), k=15)  # fan_in 8 < 15
    assert torch.all(w != 0)


def test_torch_sparse_zeroes_a_fraction_of_each_column_instead() -> None:
    torch.manual_seed(0)
    w = nn.init.sparse_(torch.empty(200, 300), sparsity=0.9)
    zeros_per_column = (w == 0).sum(dim=0)
    assert torch.all(zeros_per_column == math.ceil(0.9 * 200))
    nonzero_per_row = (w != 0).sum(dim=1)
    assert nonzero_per_row.min() < nonzero_per_row.max()  # rows differ: not our rule
    assert w[w != 0].std().item() == pytest.approx(0.01, rel=0.05)


def test_sparse_refuses_k_below_one() -> None:
    with pytest.raises(ValueError, match="init.k must be >= 1 nonzero weights per unit, got 0"):
        Sparse(k=0)


def test_normal_refuses_a_cut_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match=r"init.truncate must be > 0 \(stds\) or null, got 0"):
        Normal(std=0.02, truncate=0)


def test_truncated_std_matches_the_variance_scaling_constant() -> None:
    assert truncated_std(2.0) == pytest.approx(_TRUNCATED_STD, rel=1e-12)
    assert truncated_std(50.0) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("cut", [1.0, 2.0, 3.0])
def test_truncated_normal_has_the_exact_std_within_the_cut(cut: float) -> None:
    torch.manual_seed(0)
    w = truncated_normal_(torch.empty(2000, 1000), std=0.02, cut=cut)
    assert w.std().item() == pytest.approx(0.02, rel=0.005) and abs(w.mean()) < 1e-4
    bound = cut * 0.02 / truncated_std(cut)  # cut in stds of the underlying normal
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound


@pytest.mark.parametrize("model", all_models(), ids=lambda m: type(m).__name__)
def test_trunc_normal_preset_is_std_002_cut_at_2_std(make_cfg, model: nn.Module) -> None:
    instantiate(make_cfg("init=trunc_normal").init)(model)
    values = torch.cat([w.flatten() for _, w in matrices(model)])
    assert values.std().item() == pytest.approx(0.02, rel=0.02)
    assert values.abs().max().item() <= 2 * 0.02 / _TRUNCATED_STD


@pytest.mark.parametrize("strategy", [ReZero, SkipInit])
def test_branch_scalars_start_at_zero_with_he_weights(strategy: type) -> None:
    model = ResNet((1, 28, 28), 10, depth=20, norm="none")
    strategy()(model)
    for block in model.blocks:
        assert block.branch_scale.alpha.item() == 0 and block.branch_scale.alpha.requires_grad
        fan_in = block.conv2.weight[0].numel()
        assert block.conv2.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.1)
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


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.activation=softsign"],
        ["model=cnn", "model.activation=softsign"],
        ["model=resnet", "model.depth=8", "model.activation=softsign"],
        ["init=sparse"],
        ["init=sparse", "model=lstm"],
        ["init=trunc_normal", "model=cnn"],
        ["init=rezero", "model=resnet", "model.depth=8"],
        ["init=skipinit", "model=resnet", "model.depth=8", "model.norm=none"],
    ],
    ids=lambda o: " ".join(o),
)
def test_more_of_the_catalog_trains_end_to_end(make_cfg, overrides: list[str]) -> None:
    record = train(make_cfg(*overrides))
    assert record.status == "finished" and math.isfinite(record.metrics["train/loss_epoch"])
