"""muP coordinate check with a verdict: does each layer's activation stay the same size as the
width grows?

Claim (Yang & Hu 2021, "Tensor Programs IV"; Yang et al. 2022, "Tensor Programs V", whose
"coordinate check" this is): under muP (``models/parametrization.py``) every layer's typical
activation coordinate, and how much one training step moves it, are independent of the width;
under the standard parametrization (SP) training moves the logits (and under Adam every hidden
layer) more the wider the net, about in proportion to the width, and under SGD the input layer
learns less and less. The ``mup`` package draws these curves; here each layer gets a number and
a verdict.

Method: MLP (3 hidden layers of ``width``) and CNN (channels [width/4, width/2], hidden
``width``: the default CNN at width 128), kaiming_normal init, SP and muP (base width: the
narrowest; there SP and muP differ only in muP's zero readout), SGD (lr 0.05, momentum 0.9)
and Adam (lr 1e-3), ``steps`` updates on random batches of real MNIST. Before each update the
output x of every Linear/Conv layer (pre-activations; the readout's are the logits) is measured
on the same fixed probe images: mean |x_0| at init, then mean |x_t - x_0|, what t updates did
(the size at init is the init's business; the change is the parametrization's). Per layer and
step we fit the slope of log2(mean over seeds) against log2(width); a layer passes when every
change's |slope| <= ``TOLERANCE``. Under muP's zero readout the first update reaches only the
readout, so every other layer's change at step 1 is 0 at every width: width-independent (slope 0).

Why ``TOLERANCE`` = 0.15: it is 3.4 standard errors of the noisiest muP slope of the full run
(std across its 3 seeds 0.076, so 0.044 for their mean): a flat layer rarely fails by chance.
Over the MLP's 64x in width it allows a 1.9x drift; the full run's muP slopes are all within
0.12, and SP's failing layers (slopes 0.17 to 1.5) change 2x to 180x over the range.

Cut for this CPU: the CNN stops at width 2^11 (channels 512 and 1024); 3 seeds, 3 updates.
Full: 5 minutes on 2 CPU cores; ``--quick``: MLP 2^6-2^9, CNN 2^5-2^7, 2 seeds (7 s).

    INITBENCH_DATA=../shared/data python -m tools.coord_check  # -> docs/results/coord_check
"""

import csv
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from matplotlib.figure import Figure
from torch import Tensor, nn

from benchmarks.harness.tables import (
    experiment_parser,
    markdown_table,
    parse,
    save_figure,
    write_outputs,
)
from inits import VarianceScaling, apply_init
from models import CNN, MLP
from models.parametrization import MuP, Standard, build_optimizer
from train import compose

TOLERANCE = 0.15  # |slope| of log2 mean|activation change| per doubling of the width
SHAPE, BATCH = (1, 28, 28), 64
LAYERS = ("input", "hidden 1", "hidden 2", "readout")  # each model's Linear/Conv layers
MODELS: dict[str, Callable[[int], nn.Module]] = {
    "mlp": lambda w: MLP(SHAPE, 10, depth=3, width=w),
    "cnn": lambda w: CNN(SHAPE, 10, channels=(w // 4, w // 2), hidden=w),
}
OPTIMIZERS = {
    "sgd": partial(torch.optim.SGD, lr=0.05, momentum=0.9),
    "adam": partial(torch.optim.Adam, lr=1e-3),
}
PARAMETRIZATIONS = ("standard", "mup")
KAIMING = VarianceScaling("fan_in", "normal")  # init=kaiming_normal: gain from the activation
FULL = {"widths": {"mlp": range(6, 13), "cnn": range(6, 12)}, "steps": 3, "seeds": 3}
QUICK = {"widths": {"mlp": range(6, 10), "cnn": range(5, 8)}, "steps": 3, "seeds": 2}
Curves = dict[tuple, dict[int, list[float]]]  # (model, optimizer, param., layer, step) -> width


def _outputs(net: nn.Module, probe: Tensor) -> list[Tensor]:
    """Each Linear/Conv layer's output (pre-activations; the logits last) on ``probe``."""
    seen: list[Tensor] = []
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.clone())) for m in layers]
    with torch.no_grad():
        net(probe)
    for hook in hooks:
        hook.remove()
    return seen


def coordinates(
    net: nn.Module,
    rule: Standard | MuP,
    optimizer: Callable[..., torch.optim.Optimizer],
    probe: Tensor,
    batches: list[tuple[Tensor, Tensor]],
) -> list[list[tuple[float, float]]]:
    """Per step (0: at init, t: after t updates on ``batches``) and layer: mean |x_t| and
    mean |x_t - x_0| of the layer's output x on the fixed ``probe`` images, under ``rule``."""
    rule.rescale_init(net)
    opt = build_optimizer(net, optimizer, rule)
    first, steps = _outputs(net, probe), []
    for t in range(len(batches) + 1):
        now = first if t == 0 else _outputs(net, probe)
        sizes = [torch.stack([a.abs().mean(), (a - b).abs().mean()]) for a, b in zip(now, first)]
        steps.append([tuple(v) for v in torch.stack(sizes).tolist()])  # one host sync a step
        if t < len(batches):
            x, y = batches[t]
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    return steps


def one_net(model: str, width: int, base: int, seed: int, data: tuple[Tensor, Tensor], steps: int):
    """Both optimizers and parametrizations from the same init of one net: CSV rows without
    the model, width and seed."""
    gen = torch.Generator().manual_seed(seed)  # the same images at every width
    index = [torch.randint(0, len(data[1]), (BATCH,), generator=gen) for _ in range(steps + 1)]
    probe, batches = data[0][index[0]], [(data[0][i], data[1][i]) for i in index[1:]]
    rows = []
    for optimizer, factory in OPTIMIZERS.items():
        for name, rule in (("standard", Standard()), ("mup", MuP(base_width=base))):
            torch.manual_seed(seed)
            net = MODELS[model](width)
            apply_init(KAIMING, net, probe)
            for step, values in enumerate(coordinates(net, rule, factory, probe, batches)):
                rows += [
                    [optimizer, name, step, layer, f"{size:.6g}", f"{change:.6g}"]
                    for layer, (size, change) in zip(LAYERS, values, strict=True)
                ]
    return rows


def collect(data: tuple[Tensor, Tensor], setup: dict, path: Path) -> None:
    """Run every model, width and seed into one CSV: a row per optimizer, parametrization,
    step and layer, the file the table and the figures are made from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ["model", "width", "seed", "optimizer", "parametrization", "step", "layer"]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*key, "mean_abs", "mean_abs_change"])
        for model, exponents in setup["widths"].items():
            widths = [2**k for k in exponents]
            for width in widths:
                for seed in range(setup["seeds"]):
                    rows = one_net(model, width, widths[0], seed, data, setup["steps"])
                    writer.writerows([model, width, seed, *row] for row in rows)


def read(path: Path, column: str) -> Curves:
    """One column of the CSV as curves over the width, values over seeds."""
    curves: Curves = {}
    with path.open() as file:
        for row in csv.DictReader(file):
            key = (row["model"], row["optimizer"], row["parametrization"], row["layer"])
            by_width = curves.setdefault((*key, int(row["step"])), {})
            by_width.setdefault(int(row["width"]), []).append(float(row[column]))
    return curves


def checked(path: Path) -> Curves:
    """What the check judges: |x_0| at step 0, the change |x_t - x_0| after."""
    size, change = read(path, "mean_abs"), read(path, "mean_abs_change")
    return {k: (size if k[-1] == 0 else change)[k] for k in size}


def slope(widths: list[int], values: list[float]) -> float:
    """Least-squares slope of log2(value) against log2(width); 0 if every value is 0 (a layer
    that did not change yet at any width: muP's zero readout stops the first step's gradient
    to the hidden layers), inf if some are not finite and positive (a blow-up, a dead layer)."""
    if all(v == 0 for v in values):
        return 0.0
    if not all(math.isfinite(v) and v > 0 for v in values):
        return math.inf
    return float(np.polyfit(np.log2(widths), np.log2(values), 1)[0])


def _mean_slope(by_width: dict[int, list[float]]) -> float:
    widths = sorted(by_width)
    return slope(widths, [float(np.mean(by_width[w])) for w in widths])


def verdicts(curves: Curves, sizes: Curves) -> list[dict]:
    """A row per (model, optimizer, parametrization, layer): the slope at each step (of the
    seeds' mean), the largest std of the per-seed slopes, pass/fail on the steps after init,
    and for reference the slope of the activation itself at the last step."""
    rows: dict[tuple, dict] = {}
    for (*key, step), by_width in sorted(curves.items()):
        names = ("model", "optimizer", "parametrization", "layer")
        row = rows.setdefault(tuple(key), dict(zip(names, key)))
        mean = _mean_slope(by_width)
        row["x_0" if step == 0 else f"x_{step} - x_0"] = f"{mean:+.2f}"
        row.setdefault("_slopes", []).append(mean)
        widths = sorted(by_width)
        per_seed = [slope(widths, list(v)) for v in zip(*(by_width[w] for w in widths))]
        if step > 0:
            spread = float(np.std(per_seed)) if all(map(math.isfinite, per_seed)) else math.inf
            row["_spread"] = max(row.get("_spread", 0.0), spread)
    last = max(k[-1] for k in sizes)
    for key, row in rows.items():
        row[f"x_{last}"] = f"{_mean_slope(sizes[(*key, last)]):+.2f}"
        worst = max(abs(s) for s in row["_slopes"][1:])
        row["seed spread"] = f"{row['_spread']:.3f}"
        row["_pass"] = worst <= TOLERANCE
        row["verdict"] = f"{'pass' if row['_pass'] else 'FAIL'} (max {worst:.2f})"
    order = [list(MODELS), list(OPTIMIZERS), list(PARAMETRIZATIONS), list(LAYERS)]
    return [rows[k] for k in sorted(rows, key=lambda k: [o.index(v) for o, v in zip(order, k)])]


def figure(curves: Curves, model: str, optimizer: str, path: Path) -> None:
    """Rows: SP and muP; columns: steps (|x_0| at init, then |x_t - x_0|), sharing the y
    range so that the rows compare; a line per layer, against the width, log-log."""
    steps = sorted({k[-1] for k in curves})
    fig = Figure(figsize=(max(10.5, 3.3 * len(steps)), 6.4), dpi=100)
    axes = fig.subplots(2, len(steps), sharey="col")
    for row, parametrization in enumerate(PARAMETRIZATIONS):
        for col, step in enumerate(steps):
            ax, zero = axes[row][col], []
            for layer in LAYERS:
                by_width = curves[(model, optimizer, parametrization, layer, step)]
                widths = sorted(by_width)
                means = [float(np.mean(by_width[w])) for w in widths]
                ax.plot(widths, means, marker="o", label=layer)
                if not any(means):  # not drawn on log axes
                    zero.append(layer)
            if zero:
                ax.text(0.03, 0.03, "zero: " + ", ".join(zero), transform=ax.transAxes, fontsize=8)
            what = "mean |x_0| (init)" if step == 0 else f"mean |x_{step} - x_0|"
            ax.set_title(f"{'muP' if row else 'SP'}: {what}", fontsize=10)
            ax.set(xscale="log", yscale="log", xlabel="width" if row else "")
            ax.set_xscale("log", base=2)
            ax.grid(True, which="both", alpha=0.3)
        axes[row][0].set_ylabel("layer output (pre-activation)")
    for ax in axes[0]:  # at least a decade per panel: small wiggles must not look like slopes
        low, high = ax.get_ylim()
        if high < 10 * low:
            middle = math.sqrt(low * high)
            ax.set_ylim(middle / math.sqrt(10), middle * math.sqrt(10))
    axes[0][0].legend(fontsize=8)
    title = f"coordinate check, {model.upper()}, {optimizer}: flat lines = width-independent"
    fig.suptitle(f"{title} (step t: after t updates; muP base width: the narrowest)")
    save_figure(fig, path)


def load(overrides: list[str]) -> tuple[Tensor, Tensor]:
    """The normalized training images and labels of ``data=mnist`` as train.py composes it."""
    datamodule = instantiate(compose("data=mnist", *overrides).data)
    datamodule.setup("fit")
    return datamodule.splits["train"]


def run(
    out: Path, quick: bool = False, overrides: list[str] | None = None
) -> dict[str, list[dict]]:
    """Collect into ``out/coordinates.csv``, then report from that file."""
    setup = QUICK if quick else FULL
    collect(load(overrides or []), setup, out / "coordinates.csv")
    return report(out, setup)


def report(out: Path, setup: dict) -> dict[str, list[dict]]:
    """The verdict table (``results.md``, ``coord_check.csv``) and one figure per model and
    optimizer, from ``out/coordinates.csv`` alone."""
    curves = checked(out / "coordinates.csv")
    figures = []
    for model in setup["widths"]:
        for optimizer in OPTIMIZERS:
            figures.append(f"coord_check_{model}_{optimizer}.png")
            figure(curves, model, optimizer, out / figures[-1])
    widths = {m: f"{2 ** min(e)}-{2 ** max(e)}" for m, e in setup["widths"].items()}
    command = "python -m tools.coord_check" + (" --quick" if setup is QUICK else "")
    notes = (
        f"Command: `{command}`. Widths {widths}, muP's base width the narrowest (SP and muP "
        f"differ there only in muP's zero readout); {setup['seeds']} seeds, "
        f"{setup['steps']} steps on batches of {BATCH}, sizes measured on {BATCH} fixed probe "
        f"images. Columns: the slope of log2 mean |.| against log2 width of the layer "
        f"output x at init (x_0), of its change after t updates (x_t - x_0) and of x itself "
        f"after the last. A layer passes when every change's |slope| <= {TOLERANCE}; seed "
        f"spread: the largest std of a change's slope across seeds. Raw data: coordinates.csv."
    )
    tables = {"coord_check": verdicts(curves, read(out / "coordinates.csv", "mean_abs"))}
    write_outputs(out, tables, "muP coordinate check", figures, notes)
    return tables


def main() -> None:
    parser = experiment_parser(__doc__)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the data")
    args = parse(parser, "coord_check")
    for rows in run(args.out, args.quick, args.overrides).values():
        print(markdown_table(rows))


if __name__ == "__main__":
    main()
