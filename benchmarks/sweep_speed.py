"""The wall time of one sweep under Hydra's basic launcher, joblib and the population launcher.

Issue #14's settings: 24 runs (6 inits x 4 seeds) of the default MLP and of a small one
(5 x 100) on MNIST, 1 epoch, statistics on (the defaults), the progress bar off. Each sweep is
``python train.py -m ...`` as a user types it, run as a subprocess, one after another in this
process tree; the table gives each sweep's wall time, per run, and the speed-up over basic.
Targets (2-core CPU): population >= 3x basic for the small MLP, faster than basic for the
default MLP. ``--quick`` (2 inits x 2 seeds, 3 batches, the small MLP) is what the tests run.

    INITBENCH_DATA=../shared/data python -m benchmarks.sweep_speed
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.tables import script_main, write_outputs

ROOT = Path(__file__).resolve().parents[1]
INITS = "default,xavier_normal,kaiming_normal,lecun_normal,orthogonal,lsuv"
MODELS = {"MLP 3 x 512 (default)": [], "MLP 5 x 100": ["model.depth=5", "model.width=100"]}
LAUNCHERS = {
    "basic": ["hydra/launcher=basic"],
    "joblib (2 jobs)": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "population": ["hydra/launcher=population"],
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
    statuses = [json.loads(p.read_text())["status"] for p in folder.rglob("metrics.json")]
    ended = sum(s in ("finished", "diverged") for s in statuses)
    return {"runs": len(statuses), "ended": ended, "exit": result.returncode, "wall s": wall}


def measure(base: list[str], models: dict[str, list[str]], work: Path) -> list[dict]:
    """Every model under every launcher, one sweep after another."""
    rows = []
    for m, (model, model_overrides) in enumerate(models.items()):
        basic = None
        for n, (launcher, launcher_overrides) in enumerate(LAUNCHERS.items()):
            overrides = [*base, *COMMON, *model_overrides, *launcher_overrides]
            row = {"model": model, "launcher": launcher, **sweep(overrides, work / f"{m}-{n}")}
            basic = basic or row["wall s"]
            row["s per run"] = row["wall s"] / max(row["runs"], 1)
            row["x basic"] = basic / row["wall s"]
            rows.append(row)
            print(f"{model}, {launcher}: {row['wall s']:.1f} s, {row['ended']}/{row['runs']} ended")
    return rows


def device() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores)"


def run(out: Path, quick: bool) -> dict[str, list[dict]]:
    """Measure, then write ``sweep_speed.csv`` and ``results.md`` into ``out``."""
    base = QUICK if quick else FULL
    models = {k: v for k, v in MODELS.items() if v} if quick else MODELS
    with tempfile.TemporaryDirectory() as work:
        rows = measure(base, models, Path(work))
    shown = [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    command = f"python -m benchmarks.sweep_speed{' --quick' if quick else ''}"
    notes = f"`{command}` on {device()}; sweep: `{' '.join(base + COMMON)}`\n"
    write_outputs(out, {"sweep_speed": shown}, "Sweep wall time by launcher", [], notes)
    return {"sweep_speed": shown}


def main() -> None:
    script_main(__doc__, "sweep_speed", run)


if __name__ == "__main__":
    main()
