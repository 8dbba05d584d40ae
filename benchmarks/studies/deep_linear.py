"""Deep linear networks (Saxe, McClelland & Ganguli 2014): training time against depth for
orthogonal and scaled Gaussian inits.

Claim (Saxe et al. 2014, sec. 3 and fig. 6): a deep linear network started from orthogonal
weights (a product that is itself orthogonal: dynamical isometry) learns in a number of steps
that does not grow with depth, while one started from Gaussian weights scaled to preserve the
norm on average, N(0, 1/n), slows down as depth grows, because the product of many random
matrices is badly conditioned. Task: regress Y = A X with a fixed 32 x 32 map A (singular values
from 1 down to 0.1) on 512 N(0, 1) inputs, full-batch SGD, the best of a few learning rates per
depth (as in the paper); reported: steps until the relative error ||Y - f(X)||^2 / ||Y||^2 falls
below 0.05 (capped). Full: about 4 minutes on 2 CPU cores; ``--quick``: under 1 minute.

    python -m benchmarks.studies.deep_linear --out docs/results/deep_linear
"""

import math
from pathlib import Path

import torch
from matplotlib.figure import Figure

from benchmarks.harness.tables import mean_ci, save_figure, script_main, write_outputs
from benchmarks.studies.signal_vs_depth import strategy
from inits import apply_init
from models import MLP

DIM, SAMPLES, THRESHOLD = 32, 512, 0.05
INITS = {"orthogonal": "orthogonal", "scaled Gaussian N(0,1/n)": "lecun_normal"}


def task(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 + seed)
    u, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=gen))
    v, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=gen))
    a = u @ torch.diag(torch.logspace(0, -1, DIM)) @ v.T
    x = torch.randn(SAMPLES, DIM, generator=gen)
    return x, x @ a.T


def steps_to_threshold(init: str, depth: int, lr: float, seed: int, max_steps: int) -> int | None:
    """Full-batch SGD steps until the relative error is below ``THRESHOLD``; None if never (or
    if the run blew up)."""
    x, y = task(seed)
    torch.manual_seed(seed)
    # depth linear maps: depth - 1 hidden layers plus the output layer
    model = MLP((DIM,), DIM, depth=depth - 1, width=DIM, activation="linear")
    apply_init(strategy(init), model, x)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scale = y.square().sum()
    for step in range(max_steps):
        error = (model(x) - y).square().sum() / scale
        if not math.isfinite(error.item()):
            return None
        if error.item() < THRESHOLD:
            return step
        optimizer.zero_grad()
        (error * 0.5).backward()
        optimizer.step()
    return None


def run(out: Path, quick: bool = False) -> dict[str, list[dict]]:
    depths = [2, 8, 32] if quick else [2, 4, 8, 16, 32, 64]
    lrs = [0.1, 0.3, 1.0] if quick else [0.03, 0.1, 0.3, 1.0]
    seeds, max_steps = (2, 500) if quick else (3, 2000)
    rows, curves = [], {}
    for label, init in INITS.items():
        for depth in depths:
            best = []
            for seed in range(seeds):
                found = [steps_to_threshold(init, depth, lr, seed, max_steps) for lr in lrs]
                found = [s for s in found if s is not None]
                best.append(min(found) if found else max_steps)
            mean, ci = mean_ci([float(b) for b in best])
            curves.setdefault(label, []).append((depth, mean, ci))
            rows.append(
                {
                    "init": label,
                    "depth": depth,
                    "steps to 5 % error (mean ± 95% CI)": f"{mean:.0f} ± {ci:.0f}",
                    "seeds that never got there": sum(b >= max_steps for b in best),
                    "_steps": mean,
                }
            )
    _figure(curves, out / "deep_linear.png")
    notes = (
        f"{DIM} x {DIM} linear layers, {SAMPLES} samples, learning rate the best of {lrs} per "
        f"run, {seeds} seeds, at most {max_steps} steps."
    )
    tables = {"deep_linear": rows}
    write_outputs(out, tables, "Deep linear networks", ["deep_linear.png"], notes)
    return tables


def _figure(curves: dict[str, list[tuple]], path: Path) -> None:
    fig = Figure(figsize=(6, 3.8), dpi=90)
    ax = fig.subplots()
    for label, points in curves.items():
        depths, means, cis = zip(*points)
        ax.errorbar(depths, means, yerr=cis, marker="o", capsize=3, label=label)
    ax.set(xscale="log", xlabel="depth (linear layers)", ylabel="steps to 5 % relative error")
    ax.set_title("deep linear networks: learning time vs depth")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def main() -> None:
    script_main(__doc__, "deep_linear", run)


if __name__ == "__main__":
    main()
