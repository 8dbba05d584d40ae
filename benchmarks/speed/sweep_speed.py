"""The wall time of one sweep under Hydra's basic launcher, joblib and the population launcher.

Issue #14's settings: 24 runs (6 inits x 4 seeds) of the default MLP and of a small one
(5 x 100) on MNIST, 1 epoch, statistics on (the defaults), the progress bar off; and the small
one with ``stats=off``, without the per-run cost of the statistics' end-of-run figures. Each
sweep is ``python train.py -m ...`` as a user types it, run as a subprocess after a warm-up
sweep, one after another in this process tree; the table gives each sweep's wall time, per
run, and the speed-up over basic.
Targets (2-core CPU): population >= 3x basic for the small MLP, faster than basic for the
default MLP; on a GPU >= 10x for the default MLP (``--models default --jobs 6`` there: joblib
with as many jobs as the GPU machine's cores allow). ``--quick`` (2 inits x 2 seeds, 3 batches,
the small MLP) is what the tests run.

    INITBENCH_DATA=../shared/data python -m benchmarks.speed.sweep_speed
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness.run_all import machine
from benchmarks.harness.tables import script_main, write_outputs
from sweeps.sweep import Sweep

ROOT = Path(__file__).resolve().parents[2]
INITS = "default,xavier_normal,kaiming_normal,lecun_normal,orthogonal,lsuv"
MODELS = {  # name on the command line: (name in the table, overrides)
    "default": ("MLP 3 x 512 (default)", []),
    "small": ("MLP 5 x 100", SMALL := ["model.depth=5", "model.width=100"]),
    "small_stats_off": ("MLP 5 x 100, stats=off", [*SMALL, "stats=off"]),
}
FULL = [f"init={INITS}", "seed=0,1,2,3", "trainer.max_epochs=1"]
QUICK = ["init=xavier_normal,kaiming_normal", "seed=0,1", "trainer.max_epochs=1"]
QUICK += ["+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1"]
QUICK += ["+trainer.limit_test_batches=1", "data.val_size=16", "data.batch_size=8"]
COMMON = ["+trainer.enable_progress_bar=false"]


def sweep(overrides: list[str], folder: Path) -> dict[str, float | int]:
    """Run one sweep into ``folder``; its wall time, runs and how many ended (finished or
    diverged, from their ``metrics.json``); its output in ``folder.log``."""
    command = [sys.executable, "train.py", "-m", *overrides, f"hydra.sweep.dir={folder}"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    folder.with_suffix(".log").write_text(result.stdout + result.stderr)
    statuses = [run.status for run in Sweep.load(folder, curves=False).runs]
    ended = sum(s in ("finished", "diverged") for s in statuses)
    return {"runs": len(statuses), "ended": ended, "exit": result.returncode, "wall s": wall}


def launchers(jobs: int) -> dict[str, list[str]]:
    """Hydra's basic launcher, joblib with ``jobs`` workers, and the population launcher."""
    return {
        "basic": ["hydra/launcher=basic"],
        f"joblib ({jobs} jobs)": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"],
        "population": ["hydra/launcher=population"],
    }


def measure(base: list[str], models: list[str], jobs: int, work: Path) -> list[dict]:
    """Every model under every launcher, one sweep after another."""
    rows = []
    for m, (model, model_overrides) in enumerate(MODELS[name] for name in models):
        basic = None
        for n, (launcher, launcher_overrides) in enumerate(launchers(jobs).items()):
            overrides = [*base, *COMMON, *model_overrides, *launcher_overrides]
            row = {"model": model, "launcher": launcher, **sweep(overrides, work / f"{m}-{n}")}
            basic = basic or row["wall s"]
            row["s per run"] = row["wall s"] / max(row["runs"], 1)
            row["x basic"] = basic / row["wall s"]
            rows.append(row)
            print(f"{model}, {launcher}: {row['wall s']:.1f} s, {row['ended']}/{row['runs']} ended")
    return rows


def run(out: Path, quick: bool, models: list[str], jobs: int) -> dict[str, list[dict]]:
    """Measure, then write ``sweep_speed.csv`` and ``results.md`` into ``out``."""
    base = QUICK if quick else FULL
    models = ["small"] if quick else models
    with tempfile.TemporaryDirectory() as work:
        sweep([*QUICK, *COMMON], Path(work) / "warm-up")  # the first sweep would pay
        rows = measure(base, models, jobs, Path(work))  # for cold file caches and imports
    shown = [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    options = f" --models {' '.join(models)} --jobs {jobs}" if not quick else " --quick"
    command = f"python -m benchmarks.speed.sweep_speed{options}"
    notes = f"`{command}` on {machine()}; sweep: `{' '.join(base + COMMON)}`\n"
    write_outputs(out, {"sweep_speed": shown}, "Sweep wall time by launcher", [], notes)
    return {"sweep_speed": shown}


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--jobs", type=int, default=2, help="joblib's n_jobs (default 2)")


def main() -> None:
    script_main(__doc__, "sweep_speed", run, options)


if __name__ == "__main__":
    main()
