"""The inits that draw every weight from one fixed distribution (constant, normal, uniform,
truncated normal, sparse), checked against the distribution and against torch.nn.init."""

import math
from statistics import NormalDist

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from inits import (
    Constant,
    Normal,
    Sparse,
    Uniform,
    sparse_rows_,
    truncated_normal_,
)
from inits.random import truncated_std
from inits.samplers import _TRUNCATED_STD
from inits.targets import WEIGHTED
from tests.support import all_models, matrices


@pytest.mark.parametrize("model", all_models(), ids=lambda m: type(m).__name__)
def test_constant_normal_uniform(model: nn.Module) -> None:
    Constant(0.0, forget_bias=None)(model)
    assert all(torch.all(p == 0) for n, p in model.named_parameters() if "norm" not in n)
    Normal(std=0.2)(model)
    values = torch.cat([w.flatten() for _, w in matrices(model)])
    assert values.std().item() == pytest.approx(0.2, rel=0.02) and abs(values.mean()) < 0.005
    Uniform(-0.3, 0.1)(model)
    values = torch.cat([w.flatten() for _, w in matrices(model)])
    assert values.min() >= -0.3 and values.max() <= 0.1
    assert values.std().item() == pytest.approx(0.4 / math.sqrt(12), rel=0.02)


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
