"""Every benchmark in --quick mode on tiny data: the files it promises, and the directions of
the claims it checks; the harness's intervals and default output folders."""

import math
import re
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from benchmarks.harness.run_all import SCRIPTS, SWEEPS, run_all
from benchmarks.harness.tables import experiment_parser, mean_ci, parse
from benchmarks.speed.throughput import COLUMNS, PairedRawLoop, RawLoop
from benchmarks.studies import irnn_vs_lstm
from train import build

TINY_DATA = ["data.batch_size=8", "++data.val_size=16", "++data.eval_batch_size=16"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("benchmarks")
    return out, run_all(out, quick=True, overrides=TINY_DATA + [f"data.root={data_root}"])


@pytest.mark.slow
def test_report_links_every_experiment(quick) -> None:
    out, results = quick
    report = (out / "report.md").read_text()
    for name in [*SCRIPTS, "throughput"]:
        assert f"({name}/results.md)" in report and (out / name / "results.md").exists()
        for figure in (out / name).glob("*.png"):
            assert figure.stat().st_size > 1000
    for name in SWEEPS:
        assert results[name] == 0, (out / f"{name}.log").read_text()[-3000:]
        for file in ("summary.md", "summary.csv", "loss_curves.png", "signal_at_init.png"):
            assert (out / name / file).exists(), (name, file)


def _rows(results: dict, experiment: str, table: str) -> dict[str, dict]:
    return {row[next(iter(row))]: row for row in results[experiment][table]}


@pytest.mark.slow
def test_matmul_explosion_claims(quick) -> None:
    rows = _rows(quick[1], "matmul_explosion", "matmul_explosion")
    assert 20 <= rows["N(0,1)"]["_break_mean"] <= 40  # overflows within 20-40 steps
    assert rows["N(0,1) x 0.01"]["broke"] == rows["N(0,1) x 0.01"]["seeds"]  # underflows
    assert 0.2 <= rows["N(0,1/n)"]["_std_median"] <= 5
    assert 0.1 <= rows["N(0,2/n) + ReLU (Kaiming)"]["_std_median"] <= 5
    assert rows["N(0,1/n) + ReLU"]["_std_median"] < 1e-6  # 1/n loses half per ReLU layer
    assert 0.9 <= rows["orthogonal"]["_std_median"] <= 1.1
    variance = quick[1]["matmul_explosion"]["product_variance"]
    assert len(variance) == 4
    for row in variance:
        assert 0.85 <= row["_plain"] <= 1.15 and 0.4 <= row["_relu"] <= 0.6


@pytest.mark.slow
def test_signal_vs_depth_claims(quick) -> None:
    rows = {
        (r["activation"], r["init"]): r["_last"]
        for r in quick[1]["signal_vs_depth"]["last_layer_activation_std"]
    }
    assert len(rows) == 4 * 7
    deepest = max(rows["relu", "kaiming_normal"])
    assert 0.2 <= rows["relu", "kaiming_normal"][deepest] <= 5
    assert rows["relu", "xavier_normal"][deepest] < 1e-4  # halves the variance per layer
    assert rows["tanh", "normal_small"][deepest] < 1e-10
    jac = quick[1]["signal_vs_depth"]["jacobian_singular_values"]
    spread = {(r["init (tanh)"], r["depth"]): r["_spread"] for r in jac}
    for (init, depth), value in spread.items():
        if init == "orthogonal":
            assert value < spread["xavier_normal", depth] / 5  # dynamical isometry


@pytest.mark.slow
def test_deep_linear_claims(quick) -> None:
    rows = quick[1]["deep_linear"]["deep_linear"]
    steps = {(r["init"], r["depth"]): r["_steps"] for r in rows}
    deepest = max(d for _, d in steps)
    assert steps["orthogonal", deepest] < steps["scaled Gaussian N(0,1/n)", deepest] / 3
    assert steps["orthogonal", deepest] < 3 * steps["orthogonal", min(d for _, d in steps)]


@pytest.mark.slow
def test_coord_check_claims(quick) -> None:
    rows = quick[1]["coord_check"]["coord_check"]
    readout = {
        (r["model"], r["optimizer"], r["parametrization"]): max(map(abs, r["_slopes"][1:]))
        for r in rows
        if r["layer"] == "readout"
    }
    assert len(readout) == 2 * 2 * 2
    for model, optimizer, _ in readout:  # SP's logits move more with the width than muP's
        assert readout[model, optimizer, "mup"] < readout[model, optimizer, "standard"]
    figures = sorted((quick[0] / "coord_check").glob("*.png"))
    assert len(figures) == 4 and all(Image.open(f).width >= 1000 for f in figures)


@pytest.mark.slow
def test_quick_modes_write_their_tables_and_figures(quick) -> None:
    out, _ = quick
    for name, figure in (
        ("edge_of_chaos", "edge_of_chaos"),
        ("irnn_vs_lstm", "irnn_curves"),
        ("zero_vs_kaiming", "zero_curves"),
    ):
        assert (out / name / "results.md").exists()
        assert (out / name / f"{figure}.png").stat().st_size > 1000


@pytest.mark.slow
def test_deep_nets_far_in_the_ordered_phase_train_worse_than_near_criticality(quick) -> None:
    rows = {(r["depth"], r["sigma_w^2"]): r for r in quick[1]["edge_of_chaos"]["trained"]}
    deep = max(d for d, _ in rows)
    ordered, critical = rows[deep, 1.0], rows[deep, 1.76]
    assert not ordered["depth < 6 xi_c"] and critical["depth < 6 xi_c"]
    assert ordered["_loss"] > critical["_loss"] + 0.3
    assert ordered["_loss"] > 2.0  # near log(10): the collapsed net predicts the same for all
    phase = quick[1]["edge_of_chaos"]["phase_diagram"]
    assert all(r["_xi"] > 0 for r in phase)


@pytest.mark.slow
def test_irnn_quick_mode_compares_the_four_recurrent_setups(quick) -> None:
    # 6 steps on 48 images cannot rank the inits (the full run does): structure only
    rows = quick[1]["irnn_vs_lstm"]["irnn_vs_lstm"]
    assert [r["init"] for r in rows] == list(irnn_vs_lstm.CONFIGS)
    assert all(len(r["_values"]) == 1 and 0 <= r["_mean"] <= 100 for r in rows)
    assert all(r["diverged"] == 0 for r in rows)


@pytest.mark.slow
def test_partial_identity_leaves_the_widened_units_dead_and_zero_does_not(quick) -> None:
    rows = {r["init"]: r["_facts"][0] for r in quick[1]["zero_vs_kaiming"]["zero_vs_kaiming"]}
    partial, zero = rows["partial identity"], rows["ZerO (Hadamard when widening)"]
    assert partial["zero_units"] == partial["width"] - 784  # no signal, no gradient, ever
    assert partial["rank"] <= 784
    assert zero["zero_units"] == 0 and rows["Kaiming normal"]["zero_units"] == 0


@pytest.mark.slow
def test_throughput_table(quick) -> None:
    """Every configuration was trained, timed beside the raw loop and written: behaviour, not
    speed (how fast a shared machine runs is no test's business)."""
    (row,) = quick[1]["throughput"]["throughput"]
    assert row["model"] == "mlp" and set(row["_ratios"]) == set(COLUMNS)
    for column in COLUMNS:  # samples/s (relative to the raw loop): both loops saw samples
        assert re.fullmatch(r"[1-9][\d,]* \(\d+\.\d{3}\)", row[column]), (column, row[column])
        assert math.isfinite(row["_ratios"][column]) and row["_ratios"][column] > 0
    for cost in ("cost of stats=default", "cost of stats=full"):
        assert re.fullmatch(r"-?\d+\.\d %", row[cost]), (cost, row[cost])
    page = (quick[0] / "throughput" / "results.md").read_text()
    assert all(column in page for column in COLUMNS) and "| mlp |" in page


def test_raw_slices_are_timed_apart_from_the_lightning_epoch(make_cfg) -> None:
    cfg = make_cfg("stats=off", "++trainer.limit_train_batches=6")
    trainer, module, datamodule = build(cfg)
    paired = PairedRawLoop(cfg, every=4)
    trainer.callbacks.append(paired)
    trainer.fit(module, datamodule=datamodule)
    assert paired.lightning_samples == 6 * 8  # every Lightning batch, once
    assert paired.raw_samples == 4 * 8  # one slice, after Lightning's 4th batch
    assert all(rate > 0 for rate in paired.rates())


def test_raw_loop_reshuffles_when_the_data_runs_out(make_cfg) -> None:
    cfg = make_cfg("stats=off")
    _, _, datamodule = build(cfg)
    raw = RawLoop(cfg, datamodule, torch.device("cpu"))
    first_order = raw.order
    raw.run(len(raw.y) // raw.batch + 1)  # one batch more than the data holds
    assert raw.position == raw.batch and raw.order is not first_order


def test_mean_ci_is_the_student_t_interval() -> None:
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)  # t(.975, 2)
    assert mean_ci([5.0]) == (5.0, 0.0)


@pytest.mark.parametrize(
    ("argv", "out"),
    [
        ([], "docs/results/deep_linear"),
        (["--quick"], "logs/scratch/deep_linear"),  # git-ignored: never over kept results
        (["--quick", "--out", "elsewhere"], "elsewhere"),
    ],
)
def test_out_defaults_to_kept_results_or_scratch(argv: list[str], out: str, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["deep_linear", *argv])
    assert parse(experiment_parser("doc"), "deep_linear").out == Path(out)
