"""Step-0 signal propagation of several inits on one model, as one PNG and a Markdown table.

Runs each init through train.py's own pipeline (one training step with stats on, real data) and
plots the activation std and activation-gradient std of every watched layer against depth, the
same numbers TensorBoard shows under ``watched.act_std/`` and ``watched.act_grad_std/`` at step 0.

    python -m tools.signal_at_init --inits kaiming_normal normal_large \\
        --out docs/images/signal_kaiming_vs_normal_large.png -- model.depth=20
"""

import argparse
import logging
import math
import tempfile
from pathlib import Path

from matplotlib.figure import Figure

from callbacks import LayerStats
from callbacks.watched import depth
from train import build, compose


def step0_profile(init: str, overrides: list[str]) -> dict[str, list[float]]:
    """act_std and act_grad_std per watched layer (forward order) at step 0."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(
            f"init={init}",
            "trainer.max_epochs=1",
            "++trainer.limit_train_batches=1",
            "++trainer.limit_val_batches=0",
            "test=false",
            "logger=csv",
            *overrides,
            output_dir=tmp,
        )
        trainer, module, datamodule = build(cfg)
        trainer.fit(module, datamodule=datamodule)
    stats = next(c for c in trainer.callbacks if isinstance(c, LayerStats))
    profile: dict[str, dict[str, float]] = {"act_std": {}, "act_grad_std": {}}
    for row in stats.table:
        if row.step == 0 and row.stat in profile:
            profile[row.stat][row.layer] = row.value
    return {
        stat: [values[k] for k in sorted(values, key=depth)] for stat, values in profile.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inits", nargs="+", default=["kaiming_normal", "normal_large"])
    parser.add_argument("--out", type=Path, default=Path("signal_at_init.png"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, after --")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    profiles = {init: step0_profile(init, args.overrides) for init in args.inits}
    fig = Figure(figsize=(11, 4), dpi=100)
    axes = fig.subplots(1, 2)
    for ax, stat, title in zip(
        axes, ("act_std", "act_grad_std"), ("activation std", "gradient std")
    ):
        for init, profile in profiles.items():
            values = [v if math.isfinite(v) and v > 0 else float("nan") for v in profile[stat]]
            ax.plot(values, marker=".", label=init)
        ax.set(yscale="log", xlabel="layer (forward order)", title=f"{title} at step 0")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(" ".join(args.overrides) or "defaults")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print("| init | act std, first layer | last layer | grad std, first layer | last layer |")
    print("|---|---:|---:|---:|---:|")
    for init, p in profiles.items():
        a, g = p["act_std"], p["act_grad_std"]
        print(f"| {init} | {a[0]:.3g} | {a[-1]:.3g} | {g[0]:.3g} | {g[-1]:.3g} |")
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
