"""IRNN vs orthogonal and Xavier recurrent weights vs the LSTM, on row-by-row MNIST.

Claim (Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified
Linear Units", sec. 4.2): a ReLU RNN whose recurrent matrix starts as the identity (IRNN)
learns sequential MNIST about as well as an LSTM, where ReLU RNNs started from Gaussian
recurrent weights do not. Their task reads one pixel per step (784 steps); ours reads one row
per step (28 steps, as train.py's recurrent models do), a far shorter dependency, so the gap
should be smaller. Every run goes through train.py: ``model=rnn model.activation=relu`` with
``init=irnn`` (identity, inputs N(0, 0.001^2)), ``init=xavier_normal
+init.recurrent_orthogonal=true`` (the course material's Xavier inputs, orthogonal recurrent
weights) and ``init=xavier_normal`` (Xavier recurrent weights too); ``model=lstm
init=xavier_normal`` (forget bias 1). Each model keeps its tuned SGD settings
(``conf/model_optimizer``: RNN lr 0.01 with gradient clipping at 1, the paper's "SGD+CR"; LSTM
lr 0.1), cosine schedule, batch 128, a fixed budget of ``STEPS`` steps, 3 seeds. Full: 5
minutes on 2 CPU cores; ``--quick``: one seed, 20 steps.

    INITBENCH_DATA=../shared/data python -m benchmarks.studies.irnn_vs_lstm
"""

import tempfile
from pathlib import Path

from benchmarks.harness.seeded_runs import (
    command,
    plot_curves,
    run_seeds,
    script_main,
    summary_rows,
)
from benchmarks.harness.tables import write_outputs

RELU_RNN = ["model=rnn", "model.activation=relu"]
CONFIGS = {
    "IRNN (identity)": [*RELU_RNN, "init=irnn"],
    "RNN, orthogonal recurrent": [
        *RELU_RNN,
        "init=xavier_normal",
        "+init.recurrent_orthogonal=true",
    ],
    "RNN, Xavier recurrent": [*RELU_RNN, "init=xavier_normal"],
    "LSTM (Xavier, forget bias 1)": ["model=lstm", "init=xavier_normal"],
}
STEPS, LOG_EVERY = 400, 10


def budget(steps: int, log_every: int) -> list[str]:
    return [
        "trainer.max_epochs=1",
        f"++trainer.limit_train_batches={steps}",
        f"trainer.log_every_n_steps={log_every}",
        "++trainer.limit_val_batches=1",
    ]


def run(out: Path, quick: bool = False, overrides: list[str] = ()) -> dict[str, list[dict]]:
    steps, seeds, log_every = (20, 1, 2) if quick else (STEPS, 3, LOG_EVERY)
    with tempfile.TemporaryDirectory() as folder:
        runs = run_seeds(CONFIGS, seeds, Path(folder), [*budget(steps, log_every), *overrides])
    rows = summary_rows(runs)
    plot_curves(runs, f"row-MNIST, ReLU RNN vs LSTM ({steps} steps)", out / "irnn_curves.png")
    notes = (
        f"{steps} SGD steps of batch 128 (the data group's), cosine schedule, {seeds} seeds; "
        "test accuracy on the whole test split; 95 % intervals from Student's t."
        f" Command: `{command('irnn_vs_lstm', quick, list(overrides))}`."
    )
    tables = {"irnn_vs_lstm": rows}
    write_outputs(out, tables, "IRNN vs LSTM on row-by-row MNIST", ["irnn_curves.png"], notes)
    return tables


def main() -> None:
    script_main(__doc__, "irnn_vs_lstm", run)


if __name__ == "__main__":
    main()
