"""Edge of chaos (Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep Information
Propagation"): the mean-field phase diagram of tanh MLPs, and which depths train on MNIST.

Claim (sec. 5, fig. 5): a tanh MLP with weights N(0, sigma_w^2 / fan_in) and biases
N(0, sigma_b^2) trains only if its depth is below about 6 xi_c, the correlation depth of
``benchmarks.studies.mean_field``; xi_c diverges on the order-to-chaos line chi_1 = 1
(sigma_w^2 = 1.76 at sigma_b^2 = 0.05), so near it arbitrarily deep nets train, while deep nets
far in the ordered phase (every input maps to the same output) or in the chaotic one do not.

Part 1 draws xi_c over (sigma_w^2, sigma_b^2) with the chi_1 = 1 line. Part 2 trains tanh MLPs
of width ``WIDTH`` across depth and sigma_w^2 at sigma_b^2 = 0.05 with plain SGD for a fixed
number of steps and overlays the test accuracy with the predicted 6 xi_c. Cut for this CPU: the
paper trains widths of several hundred units up to depth 300 for up to 10^4+ steps; here width
128, depth 10-60, 300 steps (the paper's earliest snapshot), one seed. The loop is a raw PyTorch
loop on the datamodule's tensors (54 small nets; Lightning's per-run setup would cost more than
the training), with ``MeanFieldGaussian`` as the init: ``init=normal`` has an absolute std and
the catalog's strategies set biases to one constant, while the theory needs random biases.
Full: 6.5 minutes on 2 shared CPU cores; ``--quick``: under 30 s.

    INITBENCH_DATA=../shared/data python -m benchmarks.studies.edge_of_chaos
"""

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from matplotlib.figure import Figure
from torch import Tensor, nn

from benchmarks.harness.seeded_runs import command, one_thread, script_main
from benchmarks.harness.tables import save_figure, write_outputs
from benchmarks.studies import mean_field
from inits import VarianceScaling, apply_init
from models import MLP
from train import compose

SIGMA_B2 = 0.05
WIDTH, BATCH, LR = 128, 128, 0.01


class MeanFieldGaussian(VarianceScaling):
    """Weights N(0, sigma_w^2 / fan_in), biases N(0, sigma_b^2): the ensemble of the mean-field
    theory (Poole et al. 2016), every layer alike, the classifier too."""

    fixed_gain_reason = "not used: sigma_w sets the scale"

    def __init__(self, sigma_w2: float, sigma_b2: float, **shared: Any) -> None:
        if sigma_w2 <= 0 or sigma_b2 < 0:
            raise ValueError(f"need sigma_w2 > 0 and sigma_b2 >= 0, got {sigma_w2}, {sigma_b2}")
        super().__init__("fan_in", "normal", gain=math.sqrt(sigma_w2), **shared)
        self.sigma_b = math.sqrt(sigma_b2)

    @torch.no_grad()
    def __call__(self, model: nn.Module, batch: Tensor | None = None) -> nn.Module:
        super().__call__(model, batch)
        for module in model.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.normal_(0.0, self.sigma_b)
        return model


def load(overrides: list[str]) -> dict[str, tuple[Tensor, Tensor]]:
    """The train and test tensors of ``data=mnist`` as train.py composes it (normalized)."""
    datamodule = instantiate(compose("data=mnist", *overrides).data)
    datamodule.setup()
    return {k: datamodule.splits[k] for k in ("train", "test")}


def train_one(
    data: dict, depth: int, sigma_w2: float, steps: int, width: int, seed: int = 0
) -> dict[str, float]:
    """Plain SGD for ``steps`` batches; final train loss (mean of the last 10 % of steps) and
    test accuracy (chance if the loss went non-finite)."""
    torch.manual_seed(seed)
    x, y = data["train"]
    model = MLP(tuple(x.shape[1:]), 10, depth=depth, width=width, activation="tanh")
    apply_init(MeanFieldGaussian(sigma_w2, SIGMA_B2), model, x[:BATCH])
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    gen, losses = torch.Generator().manual_seed(seed), []
    for _ in range(steps):
        index = torch.randint(0, len(x), (min(BATCH, len(x)),), generator=gen)
        loss = F.cross_entropy(model(x[index]), y[index])
        if not math.isfinite(loss.item()):
            return {"loss": math.inf, "acc": 0.1}
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        test_x, test_y = data["test"]
        acc = (model(test_x).argmax(1) == test_y).float().mean().item()
    tail = losses[-max(1, steps // 10) :]
    return {"loss": sum(tail) / len(tail), "acc": acc}


def phase_rows(sigma_w2s: np.ndarray, sigma_b2s: np.ndarray) -> list[dict]:
    return [
        {
            "sigma_w^2": f"{w:.2f}",
            "sigma_b^2": f"{b:.3f}",
            "q*": f"{mean_field.q_star(w, b):.3f}",
            "chi_1": f"{mean_field.chi_1(w, b):.4f}",
            "xi_c": f"{mean_field.xi_c(w, b):.3g}",
            "_w": float(w),
            "_b": float(b),
            "_xi": mean_field.xi_c(w, b),
        }
        for b in sigma_b2s
        for w in sigma_w2s
    ]


def run(out: Path, quick: bool = False, overrides: list[str] = ()) -> dict[str, list[dict]]:
    w_grid = np.linspace(0.5, 4.0, 15 if quick else 36)
    b_grid = np.linspace(0.0, 0.3, 4 if quick else 13)
    phase = phase_rows(w_grid, b_grid)
    depths = [10, 40] if quick else [10, 20, 30, 40, 50, 60]
    sigma_w2s = [1.0, 1.76, 4.0] if quick else [1.0, 1.25, 1.5, 1.76, 2.0, 2.5, 3.0, 4.0]
    steps, width = (100, 32) if quick else (300, WIDTH)
    data = load(list(overrides))
    trained = []
    for depth in depths:
        for w in sigma_w2s:
            with one_thread():
                result = train_one(data, depth, w, steps, width)
            xi = mean_field.xi_c(w, SIGMA_B2)
            trained.append(
                {
                    "depth": depth,
                    "sigma_w^2": w,
                    "6 xi_c": f"{6 * xi:.0f}",
                    "depth < 6 xi_c": depth < 6 * xi,
                    "final train loss": f"{result['loss']:.3f}",
                    "test acc": f"{100 * result['acc']:.1f} %",
                    "_acc": result["acc"],
                    "_loss": result["loss"],
                }
            )
    _figure(phase, w_grid, b_grid, trained, depths, sigma_w2s, out / "edge_of_chaos.png")
    critical = mean_field.critical_sigma_w2(SIGMA_B2)
    notes = (
        f"Mean field: Gauss-Hermite quadrature, {mean_field.GAUSS_POINTS} points per dimension; "
        f"at sigma_b^2 = {SIGMA_B2} the critical sigma_w^2 (chi_1 = 1) is {critical:.3f}. "
        f"Training: tanh MLP width {width}, plain SGD lr {LR}, batch {BATCH}, {steps} steps, "
        f"sigma_b^2 = {SIGMA_B2}, seed 0; test accuracy on the whole test split."
        f" Command: `{command('edge_of_chaos', quick, list(overrides))}`."
    )
    tables = {"trained": trained, "phase_diagram": phase}
    write_outputs(out, tables, "Edge of chaos", ["edge_of_chaos.png"], notes)
    return tables


def _figure(phase, w_grid, b_grid, trained, depths, sigma_w2s, path: Path) -> None:
    fig = Figure(figsize=(11, 4.2), dpi=90)
    left, right = fig.subplots(1, 2)
    xi = np.array([r["_xi"] for r in phase]).reshape(len(b_grid), len(w_grid))
    image = left.pcolormesh(w_grid, b_grid, np.log10(np.clip(xi, 1e-1, 1e3)), shading="nearest")
    fig.colorbar(image, ax=left, label="log10 xi_c (clipped at 1000)")
    fine_b = np.linspace(b_grid[0], b_grid[-1], 30)
    left.plot([mean_field.critical_sigma_w2(b) for b in fine_b], fine_b, "w--", label="chi_1 = 1")
    left.text(0.7, b_grid[-1] * 0.85, "ordered", color="w")
    left.text(3.0, b_grid[-1] * 0.15, "chaotic", color="w")
    left.set(xlabel="sigma_w^2", ylabel="sigma_b^2", title="tanh mean field: correlation depth")
    left.legend(loc="lower right")
    acc = np.array([[r["_acc"] for r in trained if r["depth"] == d] for d in depths])
    columns = np.arange(len(sigma_w2s))  # evenly sized cells, labelled with sigma_w^2
    image = right.pcolormesh(columns, depths, 100 * acc, vmin=10, vmax=100, shading="nearest")
    fig.colorbar(image, ax=right, label="test accuracy (%)")
    fine_w = np.linspace(min(sigma_w2s), max(sigma_w2s), 120)
    bound = [6 * mean_field.xi_c(w, SIGMA_B2) for w in fine_w]
    right.plot(np.interp(fine_w, sigma_w2s, columns), bound, "w-", lw=2, label="6 xi_c")
    right.set_xticks(columns, [f"{w:g}" for w in sigma_w2s])
    step = (depths[-1] - depths[0]) / max(len(depths) - 1, 1) / 2 or 5
    right.set_ylim(depths[0] - step, depths[-1] + step)
    right.set(xlabel="sigma_w^2", ylabel="depth", title=f"MNIST, sigma_b^2 = {SIGMA_B2}")
    right.legend(loc="lower right")
    save_figure(fig, path)


def main() -> None:
    script_main(__doc__, "edge_of_chaos", run)


if __name__ == "__main__":
    main()
