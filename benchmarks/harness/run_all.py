"""Every benchmark experiment, one command, one ``report.md`` indexing their tables and figures.

The scripted experiments run in this process; the training studies run as ``train.py -m
experiment=<name>`` sweeps whose report (``summary.md``, loss curves, signal at init) lands in
their folder. ``--quick`` shrinks each to under 2 minutes on 2 CPU cores (the test suite runs it
on tiny data); the full runs are what ``docs/results/`` holds, a ``--quick`` run goes to
``logs/scratch/`` unless ``--out`` says otherwise.

    INITBENCH_DATA=../shared/data python -m benchmarks.harness.run_all
    python -m benchmarks.harness.run_all --quick --out /tmp/quick -- data.root=/path/to/data
"""

import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.harness.tables import experiment_parser, parse
from benchmarks.speed import throughput
from benchmarks.studies import (
    deep_linear,
    edge_of_chaos,
    irnn_vs_lstm,
    matmul_explosion,
    signal_vs_depth,
    zero_vs_kaiming,
)
from tools import audit, coord_check

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS: dict[str, Callable[..., dict]] = {
    "matmul_explosion": matmul_explosion.run,
    "signal_vs_depth": signal_vs_depth.run,
    "deep_linear": deep_linear.run,
    "audit": audit.run,
    "edge_of_chaos": edge_of_chaos.run,
    "irnn_vs_lstm": irnn_vs_lstm.run,
    "zero_vs_kaiming": zero_vs_kaiming.run,
    "coord_check": coord_check.run,
}
# scripts that build their runs through train.py's pipeline: they take the Hydra overrides
PIPELINE = (
    "throughput",
    "audit",
    "edge_of_chaos",
    "irnn_vs_lstm",
    "zero_vs_kaiming",
    "coord_check",
)
# experiment -> overrides that shrink it in --quick mode (fewer steps and axis values)
QUICK_STEPS = ["++trainer.limit_train_batches=20", "++trainer.limit_val_batches=2"]
QUICK_STEPS += ["++trainer.limit_test_batches=2", "trainer.log_every_n_steps=2"]
SWEEPS: dict[str, list[str]] = {
    "depth_trainability": ["model.depth=10"],
    "layernorm_remedy": ["init=normal_small,kaiming_normal"],
    "lstm_forget_bias": ["init=xavier_uniform", "seed=0"],
    "resnet_no_norm": ["model.depth=8"],
}


def run_sweep(name: str, out: Path, quick: bool, overrides: list[str]) -> int:
    """``train.py -m experiment=<name>`` into ``out``; its exit status (failed runs)."""
    command = [sys.executable, "train.py", "-m", f"experiment={name}", f"hydra.sweep.dir={out}"]
    command += ["+trainer.enable_progress_bar=false", *overrides]
    if quick:
        command += [*QUICK_STEPS, *SWEEPS[name]]
    with (out.parent / f"{name}.log").open("w") as log:
        return subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode


def run_all(out: Path, quick: bool, overrides: list[str]) -> dict[str, dict | int]:
    """Run everything into ``out``, write ``out/report.md``; return each script's tables and
    each sweep's exit status."""
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join(
        ["python -m benchmarks.harness.run_all", *(["--quick"] if quick else []), *overrides]
    )
    lines = [
        "# initbench benchmarks",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}.",
        "",
    ]
    results: dict[str, dict | int] = {}
    for name, run in {**SCRIPTS, "throughput": throughput.run}.items():
        started = time.perf_counter()
        kwargs = {"overrides": overrides} if name in PIPELINE else {}
        results[name] = run(out / name, quick, **kwargs)
        lines.append(_entry(name, f"{name}/results.md", time.perf_counter() - started))
    for name in SWEEPS:
        started = time.perf_counter()
        results[name] = status = run_sweep(name, out / name, quick, overrides)
        note = "" if status == 0 else f" ({status} runs failed: see {name}.log)"
        lines.append(_entry(name, f"{name}/summary.md", time.perf_counter() - started) + note)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return results


def _entry(name: str, page: str, seconds: float) -> str:
    return f"- [{name}]({page}): {seconds:.0f} s"


def machine() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPU cores, {device}, torch {torch.__version__}"


def main() -> None:
    parser = experiment_parser(__doc__)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the training runs")
    args = parse(parser, name="")  # every experiment's folder: docs/results/<name>
    logging.getLogger("lightning").setLevel(logging.WARNING)
    run_all(args.out.resolve(), args.quick, args.overrides)
    print((args.out / "report.md").read_text())


if __name__ == "__main__":
    main()
