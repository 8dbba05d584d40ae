"""Deep matmul explosion: a 512-vector through 100 random 512x512 matrices, per init scale.

Claim (fastai's "Why you need a good init"; Glorot & Bengio 2010; He et al. 2015): with N(0, 1)
entries the vector overflows to inf within about 30 multiplications (each multiplies its norm
by about sqrt(512) = 22.6); scaled by 0.01 it underflows to 0; N(0, 1/n) keeps its std near 1
without ReLU and N(0, 2/n) with ReLU; orthogonal matrices keep the norm exactly; spectral
normalization (largest singular value 1) can only shrink it. And the reason: for y = W x with
W ~ N(0, 1) of n inputs, E[y^2] = n, and E[relu(y)^2] = n / 2.

Every scheme is drawn over many seeds (fresh matrices per multiplication and per seed), so the
table gives means and spreads, not one lucky draw. Full: 100 seeds (20 for the orthogonal and
spectral schemes, a QR or a power iteration per matrix), about 7 minutes on 2 CPU cores;
``--quick``: 6 seeds (2), about 30 s.

    python -m benchmarks.studies.matmul_explosion --out docs/results/matmul_explosion
"""

import math
from collections.abc import Callable
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import Tensor

from benchmarks.harness.tables import mean_ci, save_figure, script_main, write_outputs

N, STEPS = 512, 100


def _orthogonal(seeds: int, n: int, gen: torch.Generator) -> Tensor:
    """Haar-random orthogonal matrices, as ``torch.nn.init.orthogonal_`` draws them (QR of a
    Gaussian matrix, columns signed by diag(R)), a batch at once."""
    q, r = torch.linalg.qr(torch.randn(seeds, n, n, generator=gen))
    return q * torch.diagonal(r, dim1=-2, dim2=-1).sign().unsqueeze(-2)


def _spectral(seeds: int, n: int, gen: torch.Generator, iters: int = 20) -> Tensor:
    """N(0, 1) / sigma_max, sigma_max by power iteration as torch's spectral_norm finds it."""
    w = torch.randn(seeds, n, n, generator=gen)
    u = torch.randn(seeds, 1, n, generator=gen)  # rows: u @ w is w^T u without a transpose
    for _ in range(iters):
        v = torch.nn.functional.normalize(u @ w, dim=2).transpose(1, 2)
        u = torch.nn.functional.normalize(w @ v, dim=1).transpose(1, 2)
    return w / (u @ w @ v)


def _gaussian(scale: Callable[[int], float]) -> Callable[[int, int, torch.Generator], Tensor]:
    return lambda seeds, n, gen: torch.randn(seeds, n, n, generator=gen) * scale(n)


# name -> (draw a batch of n x n matrices, ReLU after each multiplication, seeds in --quick)
SCHEMES: dict[str, tuple[Callable[[int, int, torch.Generator], Tensor], bool]] = {
    "N(0,1)": (_gaussian(lambda n: 1.0), False),
    "N(0,1) x 0.01": (_gaussian(lambda n: 0.01), False),
    "N(0,1/n)": (_gaussian(lambda n: 1 / math.sqrt(n)), False),
    "N(0,1/n) + ReLU": (_gaussian(lambda n: 1 / math.sqrt(n)), True),
    "N(0,2/n) + ReLU (Kaiming)": (_gaussian(lambda n: math.sqrt(2 / n)), True),
    "orthogonal": (_orthogonal, False),
    "spectral-normalized N(0,1)": (_spectral, False),
}
# A QR, or 20 power iterations, per matrix: fewer seeds.
COSTLY = ("orthogonal", "spectral-normalized N(0,1)")


def chain(draw, relu: bool, seeds: int) -> tuple[list[int], list[float]]:
    """``seeds`` independent chains at once (fresh matrices per multiplication and chain):
    the multiplications after which each chain was non-finite or all zero, and the std of x
    after ``STEPS`` multiplications for the chains that never broke."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(seeds, N, 1, generator=gen)
    broke = torch.zeros(seeds, dtype=torch.long)  # 0: not broken
    for step in range(1, STEPS + 1):
        x = draw(seeds, N, gen) @ x
        if relu:
            x = x.relu()
        bad = ~torch.isfinite(x).all(dim=(1, 2)) | ~x.any(dim=(1, 2))
        broke[bad & (broke == 0)] = step
        if (broke > 0).all():
            break
    alive = broke == 0
    stds = x[alive].std(dim=(1, 2)).tolist() if alive.any() else []
    return broke[~alive].tolist(), stds


def explosion_table(seeds: int, costly_seeds: int) -> tuple[list[dict], dict[str, list[float]]]:
    rows, stds = [], {}
    for name, (draw, relu) in SCHEMES.items():
        n_seeds = costly_seeds if name in COSTLY else seeds
        breaks, finite = chain(draw, relu, n_seeds)
        stds[name] = finite
        step_mean, step_ci = mean_ci(breaks)
        std_sorted = sorted(finite)
        rows.append(
            {
                "scheme": name,
                "seeds": n_seeds,
                "broke": len(breaks),
                "break step (mean ± 95% CI)": f"{step_mean:.1f} ± {step_ci:.1f}" if breaks else "–",
                "std after 100 (median)": f"{std_sorted[len(finite) // 2]:.3g}" if finite else "–",
                "std after 100 (min – max)": (
                    f"{std_sorted[0]:.3g} – {std_sorted[-1]:.3g}" if finite else "–"
                ),
                "_break_mean": step_mean if breaks else None,
                "_std_median": std_sorted[len(finite) // 2] if finite else None,
            }
        )
    return rows, stds


def product_variance_table(trials: int) -> list[dict]:
    """E[y^2] / n for y = W x, W and x ~ N(0, 1): 1 without ReLU, 1/2 with it."""
    rows = []
    for n in (64, 256, 512, 1024):
        plain, relu = [], []
        for seed in range(trials):
            torch.manual_seed(seed)
            y = torch.randn(n, n) @ torch.randn(n)
            plain.append(y.square().mean().item() / n)
            relu.append(y.relu().square().mean().item() / n)
        (pm, pc), (rm, rc) = mean_ci(plain), mean_ci(relu)
        rows.append(
            {
                "n": n,
                "trials": trials,
                "E[y^2] / n": f"{pm:.3f} ± {pc:.3f}",
                "E[relu(y)^2] / n": f"{rm:.3f} ± {rc:.3f}",
                "_plain": pm,
                "_relu": rm,
            }
        )
    return rows


def figure(stds: dict[str, list[float]], path: Path) -> None:
    fig = Figure(figsize=(8, 3.8), dpi=90)
    ax = fig.subplots()
    names = [n for n, v in stds.items() if v]
    ax.boxplot([stds[n] for n in names], orientation="horizontal")
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.set(xscale="log", xlabel=f"std of x after {STEPS} multiplications (finite runs)")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_title("a 512-vector through 100 random 512x512 matrices")
    save_figure(fig, path)


def run(out: Path, quick: bool = False) -> dict[str, list[dict]]:
    seeds, costly, trials = (6, 2, 20) if quick else (100, 20, 200)
    explosion, stds = explosion_table(seeds, costly)
    variance = product_variance_table(trials)
    figure(stds, out / "matmul_explosion.png")
    tables = {"matmul_explosion": explosion, "product_variance": variance}
    write_outputs(out, tables, title="Deep matmul explosion", figures=["matmul_explosion.png"])
    return tables


def main() -> None:
    script_main(__doc__, "matmul_explosion", run)


if __name__ == "__main__":
    main()
