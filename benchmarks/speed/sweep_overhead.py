"""What a multirun costs beyond its runs' own work: seconds per run of Hydra's in-process basic
launcher (job setup, logging, output folders, and the end-of-sweep report) against one run.

Times ``python train.py`` once and ``python train.py -m seed=0,...,N-1`` with the same tiny
settings, and subtracts what each run itself reports in ``metrics.json`` (build, data, fit,
test). The process start-up and imports, paid once per command, are what the single run costs
beyond its own seconds. Target (issue #5): under 1 s per run on CPU.

    INITBENCH_DATA=../shared/data python -m benchmarks.speed.sweep_overhead --runs 8
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = ["trainer.max_epochs=1", "+trainer.limit_train_batches=5", "+trainer.limit_val_batches=1"]
TINY += ["+trainer.limit_test_batches=1", "+trainer.enable_progress_bar=false"]


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, check=False, capture_output=True)
    return time.perf_counter() - started


def run_seconds(folder: Path) -> list[float]:
    return [json.loads(p.read_text())["seconds"] for p in folder.rglob("metrics.json")]


def measure(runs: int, overrides: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        single = timed([*TINY, *overrides, f"hydra.run.dir={tmp}/single"])
        (own_single,) = run_seconds(Path(tmp) / "single")
        seeds = ",".join(str(s) for s in range(runs))
        sweep = timed(["-m", f"seed={seeds}", *TINY, *overrides, f"hydra.sweep.dir={tmp}/sweep"])
        own = run_seconds(Path(tmp) / "sweep")
    startup = single - own_single
    return {
        "runs": len(own),
        "single run, wall s": single,
        "start-up and imports, s": startup,
        "sweep, wall s": sweep,
        "runs' own seconds, sum": sum(own),
        "overhead per run, s": (sweep - startup - sum(own)) / len(own),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, after --")
    args = parser.parse_args()
    result = measure(args.runs, args.overrides)
    print("| " + " | ".join(result) + " |")
    print("|" + "---:|" * len(result))
    print(
        "| "
        + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in result.values())
        + " |"
    )


if __name__ == "__main__":
    main()
