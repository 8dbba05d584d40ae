"""The edge-of-chaos mean field against known values and Monte Carlo, and the quick modes of
the edge-of-chaos, IRNN and ZerO experiments: their files and their claims' directions."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.studies import edge_of_chaos, irnn_vs_lstm, mean_field, zero_vs_kaiming
from inits import apply_init, zero_
from inits.targets import weight_targets
from models import MLP

TINY = ["data.batch_size=8", "++data.val_size=16", "++data.eval_batch_size=16"]


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


def test_partial_identity_is_eye_where_zero_uses_the_hadamard() -> None:
    model = MLP((784,), 10, depth=2, width=1024)
    zero_vs_kaiming.PartialIdentity()(model)
    widening, square, head = (t.tensor for t in weight_targets(model))
    assert torch.equal(widening, torch.eye(1024, 784))  # ZerO: a Hadamard here
    assert not torch.equal(zero_(torch.empty(1024, 784)), widening)
    assert torch.equal(square, torch.eye(1024)) and torch.equal(head, torch.eye(10, 1024))


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("experiments")
    overrides = [*TINY, f"data.root={data_root}"]
    modules = {"eoc": edge_of_chaos, "irnn": irnn_vs_lstm, "zero": zero_vs_kaiming}
    return out, {k: m.run(out / k, quick=True, overrides=overrides) for k, m in modules.items()}


def test_quick_modes_write_their_tables_and_figures(quick) -> None:
    out, _ = quick
    for name, figure in (
        ("eoc", "edge_of_chaos"),
        ("irnn", "irnn_curves"),
        ("zero", "zero_curves"),
    ):
        assert (out / name / "results.md").exists()
        assert (out / name / f"{figure}.png").stat().st_size > 1000


def test_deep_nets_far_in_the_ordered_phase_train_worse_than_near_criticality(quick) -> None:
    rows = {(r["depth"], r["sigma_w^2"]): r for r in quick[1]["eoc"]["trained"]}
    deep = max(d for d, _ in rows)
    ordered, critical = rows[deep, 1.0], rows[deep, 1.76]
    assert not ordered["depth < 6 xi_c"] and critical["depth < 6 xi_c"]
    assert ordered["_loss"] > critical["_loss"] + 0.3
    assert ordered["_loss"] > 2.0  # near log(10): the collapsed net predicts the same for all
    phase = quick[1]["eoc"]["phase_diagram"]
    assert all(r["_xi"] > 0 for r in phase)


def test_irnn_quick_mode_compares_the_four_recurrent_setups(quick) -> None:
    # 6 steps on 48 images cannot rank the inits (the full run does): structure only
    rows = quick[1]["irnn"]["irnn_vs_lstm"]
    assert [r["init"] for r in rows] == list(irnn_vs_lstm.CONFIGS)
    assert all(len(r["_values"]) == 1 and 0 <= r["_mean"] <= 100 for r in rows)
    assert all(r["diverged"] == 0 for r in rows)


def test_partial_identity_leaves_the_widened_units_dead_and_zero_does_not(quick) -> None:
    rows = {r["init"]: r["_facts"][0] for r in quick[1]["zero"]["zero_vs_kaiming"]}
    partial, zero = rows["partial identity"], rows["ZerO (Hadamard when widening)"]
    assert partial["zero_units"] == partial["width"] - 784  # no signal, no gradient, ever
    assert partial["rank"] <= 784
    assert zero["zero_units"] == 0 and rows["Kaiming normal"]["zero_units"] == 0
