"""Signal propagation against depth at init: every init, four activations, MLPs of 5 to 200
layers, and the input-output Jacobian's singular values (dynamical isometry).

Claims: with ReLU, Kaiming's sqrt(2 / fan_in) keeps the activation std constant with depth while
Xavier halves the variance per layer (He et al. 2015, sec. 2.2); N(0, 0.01^2) vanishes and
N(0, 1) explodes at any depth (Glorot & Bengio 2010); tanh with orthogonal weights has a
Jacobian whose singular values stay near 1 at any depth, while Gaussian weights of the same
scale spread them more and more with depth (Saxe et al. 2014; Pennington, Schoenholz & Ganguli
2017). Inputs: a batch of N(0, 1) vectors of MNIST's size (784), the setting of those analyses;
gradients from cross-entropy with random labels. Full: about 3 minutes on 2 CPU cores;
``--quick``: under 1 minute.

    python -m benchmarks.studies.signal_vs_depth --out docs/results/signal_vs_depth
"""

import functools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from matplotlib.figure import Figure
from omegaconf import DictConfig
from torch import Tensor

from benchmarks.harness.tables import save_figure, script_main, write_outputs
from inits import apply_init
from models import MLP

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
INITS = ["normal_small", "normal_large", "xavier_normal", "lecun_normal", "kaiming_normal"]
INITS += ["orthogonal", "lsuv"]
ACTIVATIONS = ["relu", "tanh", "linear", "selu"]
INPUT = (1, 28, 28)


@functools.cache
def _init_config(name: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[f"init={name}"]).init


def strategy(name: str, **overrides):
    """A fresh init strategy exactly as ``init=<name>`` composes it, plus ``overrides``."""
    return instantiate(_init_config(name), **overrides)


def profile(init: str, activation: str, depth: int, width: int, batch: int) -> dict[str, list]:
    """Std of every hidden layer's output and of its gradient, layer by layer."""
    torch.manual_seed(0)
    model = MLP(INPUT, 10, depth=depth, width=width, activation=activation)
    x, y = torch.randn(batch, *INPUT), torch.randint(0, 10, (batch,))
    apply_init(strategy(init), model, x)
    outputs: list[Tensor] = []
    handles = [
        layer.register_forward_hook(lambda _, __, out: outputs.append(out))
        for layer in model.layers
    ]
    logits = model(x)
    for handle in handles:
        handle.remove()
    for out in outputs:
        out.retain_grad()
    F.cross_entropy(logits, y).backward()
    act = [o.detach().std().item() for o in outputs]
    grad = [o.grad.std().item() if o.grad is not None else float("nan") for o in outputs]
    return {"act_std": act, "grad_std": grad}


def jacobian_singular_values(init: str, depth: int, width: int) -> Tensor:
    """Singular values of d(last hidden layer) / d(input) of a tanh MLP of constant width,
    weights at gain 1 and zero biases (sigma_w = 1, sigma_b = 0: the critical point), at one
    input of small variance (0.01) where tanh is near-linear: where Pennington et al. 2017
    (fig. 1) show that orthogonal weights reach dynamical isometry and Gaussian ones do not."""
    torch.manual_seed(0)
    model = MLP((width,), 10, depth=depth, width=width, activation="tanh")
    apply_init(strategy(init, gain=1.0), model, torch.randn(64, width))
    body = torch.nn.Sequential(*model.layers)
    jacobian = torch.autograd.functional.jacobian(body, 0.1 * torch.randn(1, width))
    return torch.linalg.svdvals(jacobian.reshape(width, width))


def _log10(v: float) -> float:
    """log10 of a std for the heatmap: 0 (underflow) far below, inf/nan (overflow) far above
    the color range, so both show in its end colors instead of as blanks."""
    if v == 0:
        return -100.0
    return math.log10(v) if math.isfinite(v) else 100.0


def run(out: Path, quick: bool = False) -> dict[str, list[dict]]:
    depths = [5, 20, 50] if quick else [5, 10, 20, 50, 100, 200]
    width, batch = (128, 128) if quick else (256, 256)
    profiles = {
        (a, i, d): profile(i, a, d, width, batch)
        for a in ACTIVATIONS
        for i in INITS
        for d in depths
    }
    last = [
        {
            "activation": a,
            "init": i,
            **{f"depth {d}": f"{profiles[a, i, d]['act_std'][-1]:.3g}" for d in depths},
            "_last": {d: profiles[a, i, d]["act_std"][-1] for d in depths},
        }
        for a in ACTIVATIONS
        for i in INITS
    ]
    jac_depths = [4, 16, 64] if quick else [4, 16, 64, 256]
    jac = []
    for init in ("orthogonal", "xavier_normal"):
        for d in jac_depths:
            sv = jacobian_singular_values(init, d, 64 if quick else 128)
            spread = sv.log().std().item()
            jac.append(
                {
                    "init (tanh)": init,
                    "depth": d,
                    "sigma max": f"{sv.max().item():.3g}",
                    "sigma min": f"{sv.min().item():.3g}",
                    "std of log sigma": f"{spread:.3g}",
                    "_spread": spread,
                }
            )
    _heatmaps(profiles, depths, out / "signal_vs_depth_heatmap.png")
    _curves(profiles, depths[-1], out / "signal_vs_depth_layers.png")
    tables = {"last_layer_activation_std": last, "jacobian_singular_values": jac}
    notes = (
        f"MLP width {width}, batch {batch} of N(0, 1) inputs; the table gives the std of the "
        "last hidden layer's output at init."
    )
    figures = ["signal_vs_depth_heatmap.png", "signal_vs_depth_layers.png"]
    write_outputs(out, tables, "Signal propagation vs depth", figures, notes)
    return tables


def _heatmaps(profiles: dict, depths: list[int], path: Path) -> None:
    fig = Figure(figsize=(4.2 * len(ACTIVATIONS), 3.8), dpi=90, layout="constrained")
    axes = fig.subplots(1, len(ACTIVATIONS))
    for ax, a in zip(axes, ACTIVATIONS):
        grid = [[_log10(profiles[a, i, d]["act_std"][-1]) for d in depths] for i in INITS]
        image = ax.imshow(grid, cmap="coolwarm", vmin=-6, vmax=6, aspect="auto")
        ax.set_xticks(range(len(depths)), depths)
        ax.set_yticks(range(len(INITS)), INITS if a == ACTIVATIONS[0] else [""] * len(INITS))
        ax.set(xlabel="depth", title=f"{a}: log10 std, last layer (clipped)")
    fig.colorbar(image, ax=axes, shrink=0.8)
    save_figure(fig, path)


def _curves(profiles: dict, depth: int, path: Path) -> None:
    fig = Figure(figsize=(4.2 * len(ACTIVATIONS), 6.5), dpi=90)
    axes = fig.subplots(2, len(ACTIVATIONS))
    for col, a in enumerate(ACTIVATIONS):
        for row, stat in enumerate(("act_std", "grad_std")):
            ax = axes[row][col]
            for i in INITS:
                values = [
                    v if math.isfinite(v) and v > 0 else float("nan")
                    for v in profiles[a, i, depth][stat]
                ]
                ax.plot(values, label=i)
            ax.set(yscale="log", xlabel="layer", title=f"{a}, depth {depth}: {stat}")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize="small")
    save_figure(fig, path)


def main() -> None:
    script_main(__doc__, "signal_vs_depth", run)


if __name__ == "__main__":
    main()
