"""ZerO vs partial identity vs Kaiming on an MNIST MLP that widens past its input.

Claim (Zhao, Schäfer & Anandkumar 2022, "ZerO Initialization", sec. 3, Theorem 1 and fig. 3):
an identity-style init of a network that widens (784 -> 1024) suffers a "training degeneracy":
with partial identity weights (identity where shapes match, zeros elsewhere) the units beyond
the input's 784 get no signal and no gradient, so the update of every later square layer,
W - I, keeps rank <= 784 whatever the training; ZerO puts a scaled Hadamard matrix where the
width grows, every unit gets a different mix, the rank is not capped, and it trains as well
as a random (Kaiming) init. Setting, after the authors' ``example_mnist.ipynb``: ReLU MLP,
plain SGD lr 0.1 without momentum or weight decay, batch 64, constant rate. Approximated:
train.py's MLP is 784 -> 1024 -> 1024 -> 1024 -> 10 with (zero) biases, where theirs is
784 -> 784 -> 1024 -> 1024 -> 10 without biases; one epoch (860 steps), not their 20; 3 seeds
(ZerO and partial identity are deterministic: the seed changes only the batch order).
``init=zerO`` always uses the Hadamard when a layer widens, so the partial identity is
``PartialIdentity`` here, reached through train.py as ``init._target_=...``. Full: 12.5
minutes on 2 shared CPU cores; ``--quick``: one seed, a few steps, width 800.

    INITBENCH_DATA=../shared/data python -m benchmarks.studies.zero_vs_kaiming
"""

import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness.seeded_runs import (
    command,
    plot_curves,
    run_seeds,
    script_main,
    summary_rows,
)
from benchmarks.harness.tables import write_outputs
from inits import ZerO
from inits.targets import WeightTarget

SETTING = [
    "model=mlp",
    "model.depth=3",
    "optimizer.lr=0.1",
    "optimizer.momentum=0",
    "optimizer.weight_decay=0",
    "scheduler=constant",
]
CONFIGS = {
    "ZerO (Hadamard when widening)": ["init=zerO"],
    "partial identity": [
        "init=zerO",
        "init._target_=benchmarks.studies.zero_vs_kaiming.PartialIdentity",
    ],
    "Kaiming normal": ["init=kaiming_normal"],
}
SQUARE = "net.layers.1.0.weight"  # the second hidden layer, width x width
WIDENING = "net.layers.0.0.weight"  # the first, width x 784


class PartialIdentity(ZerO):
    """Definition 1 of Zhao et al. 2022: every weight ``torch.nn.init.eye_``, identity where
    the shapes match and zeros elsewhere, also where a layer widens (ZerO's Hadamard case)."""

    def init_weight(self, target: WeightTarget, gain: float) -> None:
        super().init_weight(target, gain)  # ZerO's refusals and its kernel-centre rule
        if target.tensor.shape[0] > target.tensor.shape[1]:
            centre = tuple(k // 2 for k in target.tensor.shape[2:])
            target.tensor.zero_()
            target.tensor[(slice(None), slice(None), *centre)] = torch.eye(*target.tensor.shape[:2])


def weight_facts(output_dir: Path) -> dict[str, Any]:
    """From the run's last checkpoint: rank of W - I of the square layer, and the first layer's
    units whose incoming weights are all exactly 0 (never updated)."""
    state = torch.load(output_dir / "checkpoints" / "last.ckpt", map_location="cpu")["state_dict"]
    square = state[SQUARE]
    rank = int(torch.linalg.matrix_rank(square - torch.eye(*square.shape)))
    dead = int((state[WIDENING] == 0).all(dim=1).sum())
    return {"rank": rank, "zero_units": dead, "width": square.shape[0]}


def run(out: Path, quick: bool = False, overrides: list[str] = ()) -> dict[str, list[dict]]:
    width, seeds, steps = (800, 1, 20) if quick else (1024, 3, None)
    budget = ["trainer.max_epochs=1", "data.batch_size=64", f"model.width={width}"]
    budget += [f"++trainer.limit_train_batches={steps}"] if steps else []
    budget += ["trainer.log_every_n_steps=2" if quick else "trainer.log_every_n_steps=20"]
    with tempfile.TemporaryDirectory() as folder:
        runs = run_seeds(CONFIGS, seeds, Path(folder), [*SETTING, *budget, *overrides])
        facts = {
            label: [weight_facts(Path(run.record.output_dir)) for run in seeded]
            for label, seeded in runs.items()
        }
    rows = summary_rows(runs)
    for row in rows:
        found = facts[row["init"]]
        row["rank of W2 - I (per seed)"] = ", ".join(str(f["rank"]) for f in found)
        row["layer-1 units with all-zero weights"] = ", ".join(str(f["zero_units"]) for f in found)
        row["_facts"] = found
    plot_curves(runs, f"MNIST MLP 784 -> {width} x 3 -> 10, SGD lr 0.1", out / "zero_curves.png")
    notes = (
        f"ReLU MLP 784 -> {width} -> {width} -> {width} -> 10, plain SGD lr 0.1, batch 64 "
        f"(the data group's if overridden), {'one epoch' if steps is None else f'{steps} steps'}"
        f", {seeds} seeds; test accuracy on the whole test split, 95 % t intervals. W2 is the "
        f"second hidden layer ({width} x {width}); its rank is taken after training (for "
        "Kaiming, W2 - I has no meaning: a random matrix has full rank)."
        f" Command: `{command('zero_vs_kaiming', quick, list(overrides))}`."
    )
    tables = {"zero_vs_kaiming": rows}
    write_outputs(out, tables, "ZerO vs partial identity vs Kaiming", ["zero_curves.png"], notes)
    return tables


def main() -> None:
    script_main(__doc__, "zero_vs_kaiming", run)


if __name__ == "__main__":
    main()
