"""The edge-of-chaos mean field (Poole et al. 2016; Schoenholz et al. 2017) against the paper's
known values and Monte Carlo, and the init that draws the ensemble it describes."""

import math

import numpy as np
import pytest
import torch

from benchmarks.studies import edge_of_chaos, mean_field
from inits import apply_init
from models import MLP


def test_chi_1_is_one_at_the_critical_point_of_tanh_without_bias() -> None:
    # sigma_b = 0, sigma_w^2 = 1: q* = 0 and phi'(0)^2 = 1 (Schoenholz et al. 2017, fig. 1)
    assert mean_field.q_star(1.0, 0.0) == 0.0
    assert mean_field.chi_1(1.0, 0.0) == pytest.approx(1.0, abs=1e-12)
    assert mean_field.chi_1(0.8, 0.0) == pytest.approx(0.8, abs=1e-12)


def test_the_critical_line_matches_the_paper_and_xi_c_diverges_on_it() -> None:
    critical = mean_field.critical_sigma_w2(0.05)
    assert critical == pytest.approx(1.76, abs=0.01)  # the paper's value at sigma_b^2 = 0.05
    for side in (-1, 1):  # ordered and chaotic
        near = mean_field.xi_c(critical + side * 1e-4, 0.05)
        far = mean_field.xi_c(critical + side * 1.0, 0.05)
        assert near > 1000 and near > 100 * far
    assert mean_field.c_star(critical - 0.5, 0.05) == 1.0
    assert mean_field.c_star(critical + 0.5, 0.05) < 1.0


@pytest.mark.parametrize("sigma_w2, sigma_b2", [(1.0, 0.05), (2.5, 0.05), (4.0, 0.2)])
def test_quadrature_agrees_with_monte_carlo(sigma_w2: float, sigma_b2: float) -> None:
    gen = np.random.default_rng(0)
    z1, z2 = gen.standard_normal((2, 2_000_000))
    q = mean_field.q_star(sigma_w2, sigma_b2)
    assert sigma_w2 * np.mean(np.tanh(math.sqrt(q) * z1) ** 2) + sigma_b2 == pytest.approx(
        q, rel=2e-3
    )
    chi = sigma_w2 * np.mean(1 / np.cosh(math.sqrt(q) * z1) ** 4)
    assert chi == pytest.approx(mean_field.chi_1(sigma_w2, sigma_b2), rel=2e-3)
    c = 0.3
    u1, u2 = math.sqrt(q) * z1, math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    monte_carlo = (sigma_w2 * np.mean(np.tanh(u1) * np.tanh(u2)) + sigma_b2) / q
    assert monte_carlo == pytest.approx(mean_field.c_map(c, q, sigma_w2, sigma_b2), abs=2e-3)


def test_a_wide_network_reaches_the_predicted_variance_fixed_point() -> None:
    """MeanFieldGaussian draws the ensemble the recursion describes: after 20 layers of width
    1024 the pre-activations' variance is q*, from a start far from it."""
    torch.manual_seed(0)
    model = MLP((1024,), 10, depth=20, width=1024, activation="tanh")
    x = 3.0 * torch.randn(256, 1024)
    apply_init(edge_of_chaos.MeanFieldGaussian(2.5, 0.05), model, x)
    with torch.no_grad():
        h = x
        for layer in model.layers[:-1]:
            h = layer(h)
        pre = model.layers[-1][0](h)
    assert pre.var().item() == pytest.approx(mean_field.q_star(2.5, 0.05), rel=0.05)
    biases = torch.cat([m.bias for m in model.modules() if isinstance(m, torch.nn.Linear)])
    assert biases.var().item() == pytest.approx(0.05, rel=0.1)
