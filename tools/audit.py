"""Which init for my model? Every init of the catalog at step 0 on one real batch, ranked.

Each init runs through train.py's own pipeline (``train.compose`` + ``train.build``, one
forward/backward with the ``LayerStats`` statistics, no training), so the model may be any
``model=...`` or a user's own ``model._target_=...``. Per init, over the layer outputs (Linear,
Conv, recurrent: the pre-activations, the logits last):

- activation std at the first and last layer output, and its spread: max/min across layers;
- the activation-gradient norm ratio last/first layer output (> 1: gradients shrink on their
  way back to the input, < 1: they grow);
- dead fraction (units zero for every sample) and saturated fraction (tanh/sigmoid outputs
  within 1 % of a bound), the max over the watched modules;
- the input-output Jacobian (logits w.r.t. the input, on ``JACOBIAN_BATCH`` images, in train
  mode like the step the statistics watch): the ratio of its largest to smallest nonzero
  singular value. Without batch norm the matrix is block-diagonal, so these are the singular
  values of every image's own Jacobian together.

The score ranks how well the signal is kept in both directions, lower is better (0: every
layer output has the same std and the gradient norm is the same at both ends):
``score = |ln(activation std spread)| + |ln(gradient ratio)|``; a non-finite or zero value
scores infinity. An init that refuses the model (``NotApplicable``, ``TypeError``,
``ValueError``) is listed as "not applicable" with its reason.

    python -m tools.audit --out /tmp/audit -- model=resnet model.depth=20
    python -m tools.audit --inits kaiming_normal orthogonal -- model._target_=mypkg.MyNet
"""

import argparse
import copy
import logging
import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from matplotlib.figure import Figure

from benchmarks.harness.tables import markdown_table, save_figure, write_outputs
from callbacks import LayerStats
from callbacks.watched import LAYER_OUTPUT, depth
from train import CONFIG_DIR, build, compose

QUICK = ["kaiming_normal", "xavier_normal", "orthogonal", "normal_small", "normal_large", "fixup"]
JACOBIAN_BATCH = 4
NONZERO = 1e-6  # a singular value below this fraction of the largest counts as zero
REFUSALS = (TypeError, ValueError, InstantiationException)  # NotApplicable is a TypeError
STEP0 = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=1",
    "++trainer.limit_val_batches=0",
    "++trainer.enable_progress_bar=false",
    "++trainer.enable_model_summary=false",
    "logger=csv",
    "stats=default",
]


@dataclass
class Profile:
    """The step-0 statistics of one init: per layer output in forward order, and the maxima."""

    act_std: list[float] = field(default_factory=list)
    act_grad_norm: list[float] = field(default_factory=list)
    dead: float = 0.0
    saturated: float = 0.0
    jacobian_ratio: float = math.nan


def catalog() -> list[str]:
    """Every init of ``conf/init/``, by name."""
    return sorted(p.stem for p in (CONFIG_DIR / "init").glob("*.yaml"))


def step0_profile(init: str, overrides: list[str]) -> Profile | str:
    """The init's ``Profile``, or the one-line reason it refuses the model."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(f"init={init}", *STEP0, *overrides, output_dir=tmp)
        try:
            trainer, module, datamodule = build(cfg)
        except REFUSALS as error:
            return _one_line(error)
        x, _ = next(iter(datamodule.train_dataloader()))
        profile = Profile(jacobian_ratio=jacobian_ratio(module.net, x[:JACOBIAN_BATCH]))
        trainer.fit(module, datamodule=datamodule)
    stats = next(c for c in trainer.callbacks if isinstance(c, LayerStats))
    values: dict[str, dict[str, float]] = {"act_std": {}, "act_grad_norm": {}}
    for row in stats.table:
        if row.step != 0:
            continue
        if row.stat in values and stats._series.get(row.layer) == LAYER_OUTPUT:
            values[row.stat][row.layer] = row.value
        elif row.stat == "act_dead_frac":
            profile.dead = max(profile.dead, row.value)
        elif row.stat == "act_saturated_frac":
            profile.saturated = max(profile.saturated, row.value)
    for stat, by_layer in values.items():
        setattr(profile, stat, [by_layer[k] for k in sorted(by_layer, key=depth)])
    return profile


def _one_line(error: BaseException) -> str:
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__  # Hydra's wrapper: the init's own message is the cause's
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def jacobian_ratio(net: torch.nn.Module, x: torch.Tensor) -> float:
    """Largest over smallest nonzero singular value of d(logits)/d(input) on the batch ``x``
    (a copy of the net, so batch-norm running statistics stay as the init left them)."""
    net = copy.deepcopy(net).train()
    jac = torch.autograd.functional.jacobian(lambda inputs: net(inputs), x.float())
    s = torch.linalg.svdvals(jac.reshape(net(x.float()).numel(), x.numel()).double())
    if not torch.isfinite(s).all() or s.max() == 0:
        return math.nan
    s = s[s > s.max() * NONZERO]
    return float(s.max() / s.min())


def spread(values: list[float]) -> float:
    """max/min of the values; infinity when one is zero or not finite."""
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        return math.inf
    return max(values) / min(values)


def grad_ratio(p: Profile) -> float:
    first, last = p.act_grad_norm[0], p.act_grad_norm[-1]
    finite = all(math.isfinite(v) and v > 0 for v in (first, last))
    return last / first if finite else math.nan


def score(p: Profile) -> float:
    """|ln(activation std spread)| + |ln(gradient ratio last/first)|; lower is better."""
    ratio = grad_ratio(p)
    if not math.isfinite(spread(p.act_std)) or not math.isfinite(ratio):
        return math.inf
    return abs(math.log(spread(p.act_std))) + abs(math.log(ratio))


def reason(init: str, p: Profile) -> str:
    """One line: the activation std range across the layers and the gradients' change."""
    std = [v for v in p.act_std if math.isfinite(v)]
    zero = sum(v == 0 for v in std)
    if len(std) < len(p.act_std) or not std:
        text = f"{init}: activation std not finite at {len(p.act_std) - len(std)} layers"
    elif zero:
        text = f"{init}: activation std zero at {zero} of {len(std)} layers"
    else:
        text = f"{init}: activation std {min(std):.2g}-{max(std):.2g} across {len(std)} layers"
    ratio = grad_ratio(p)
    if not math.isfinite(ratio):
        text += ", gradient norm zero or not finite"
    else:
        factor = max(ratio, 1 / ratio)
        way = "shrink" if ratio > 1 else "grow"
        text += f", gradient norm kept within {factor:.3g}x" if factor < 2 else ""
        text += f", gradients {way} {factor:.2g}x toward the input" if factor >= 2 else ""
    if p.dead >= 0.1:
        text += f", up to {p.dead:.0%} dead units"
    if p.saturated >= 0.1:
        text += f", up to {p.saturated:.0%} saturated"
    return text


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def ranking(profiles: dict[str, Profile | str]) -> list[dict]:
    """One row per init, best score first; the inits that refused the model last."""
    applied = {k: p for k, p in profiles.items() if isinstance(p, Profile)}
    rows = []
    for rank, init in enumerate(sorted(applied, key=lambda k: score(applied[k])), start=1):
        p = applied[init]
        rows.append(
            {
                "rank": rank,
                "init": init,
                "act std first": _fmt(p.act_std[0]),
                "act std last": _fmt(p.act_std[-1]),
                "act std max/min": _fmt(spread(p.act_std)),
                "grad norm last/first": _fmt(grad_ratio(p)),
                "dead (max)": f"{p.dead:.2f}",
                "saturated (max)": f"{p.saturated:.2f}",
                "jacobian sv max/min": _fmt(p.jacobian_ratio),
                "score": _fmt(score(p)),
                "reason": reason(init, p),
                "_score": score(p),
            }
        )
    blank = dict.fromkeys(list(rows[0])[2:-2] if rows else [], "")
    for init, why in profiles.items():
        if isinstance(why, str):
            rows.append({"rank": "", "init": init, **blank, "reason": f"not applicable: {why}"})
    return rows


def figure(profiles: dict[str, Profile | str], ranked: list[str], title: str) -> Figure:
    """Activation std of every layer output per init, log y; the legend in rank order."""
    fig = Figure(figsize=(13, 5.5), dpi=100)
    ax = fig.subplots()
    for i, init in enumerate(ranked):
        values = [v if math.isfinite(v) and v > 0 else math.nan for v in profiles[init].act_std]
        style = dict(color=f"C{i % 10}", linestyle=("-", "--", ":")[i // 10 % 3], marker=".")
        ax.plot(values, label=f"{i + 1}. {init}", **style)
    ax.set(yscale="log", xlabel="layer output (forward order)", ylabel="activation std")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"activation std at step 0: {title}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), title="rank. init")
    return fig


def run(
    out: Path, quick: bool, overrides: list[str] = (), inits: list[str] | None = None
) -> dict[str, list[dict]]:
    """Audit ``inits`` (all of the catalog, or ``QUICK``) on the model the overrides compose;
    write ``audit.csv``, ``audit.png`` and ``results.md`` into ``out``."""
    unknown = sorted(set(inits or []) - set(catalog()))
    if unknown:
        raise ValueError(f"--inits: no such init {', '.join(unknown)}; choose from {catalog()}")
    names = inits or (QUICK if quick else catalog())
    profiles = {init: step0_profile(init, list(overrides)) for init in names}
    if not any(isinstance(p, Profile) for p in profiles.values()):
        raise ValueError(f"no init applies to this model: {next(iter(profiles.values()))}")
    title = " ".join(overrides) or "defaults"
    tables = {"audit": ranking(profiles)}
    ranked = [row["init"] for row in tables["audit"] if row["rank"] != ""]
    save_figure(figure(profiles, ranked, title), out / "audit.png")
    notes = (
        f"Command: `python -m tools.audit -- {title}`. Score: |ln(act std max/min)| + "
        "|ln(grad norm last/first)| over the layer outputs at step 0, lower is better; the "
        f"Jacobian is d(logits)/d(input) on {JACOBIAN_BATCH} images.\n"
    )
    write_outputs(out, tables, f"Init audit: {title}", ["audit.png"], notes)
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inits", nargs="+", help="init names (default: every conf/init/)")
    parser.add_argument("--out", type=Path, default=Path("audit"))
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the model, after --")
    args = parser.parse_args()
    for name in ("lightning.pytorch", "lightning.fabric", "callbacks"):
        logging.getLogger(name).setLevel(logging.ERROR)  # 'diverged at step 0' is in the table
    # one batch, no validation: Lightning's advice on logging intervals and monitors is noise
    warnings.filterwarnings("ignore", message=r".*(log_every_n_steps|the monitored key)")
    tables = run(args.out, args.quick, args.overrides, args.inits)
    print(markdown_table(tables["audit"]))
    print(f"table and figure: {args.out}/results.md")


if __name__ == "__main__":
    main()
