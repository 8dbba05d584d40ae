"""Faults a long sweep meets: a kill in the middle of an epoch, and a folder it cannot write.
Resumed with ``resume=true``, a killed sweep or run ends with exactly the metrics of one that
was never interrupted."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runs.record import RunRecord
from tests.support import FAST_CLI, ROOT

pytestmark = pytest.mark.slow

SWEEP = ["init=xavier_normal,kaiming_normal", "seed=0,1", "model.depth=2", "model.width=16"]
LONGER = ["trainer.max_epochs=3", "+trainer.limit_train_batches=4", "stats=off"]
KILL = [
    "+callbacks.kill._target_=tests.helpers.KillOnce",
    "+callbacks.kill.when=kaiming_normal-0",  # the third job of the sweep
    "+callbacks.kill.run=${hydra:runtime.choices.init}-${seed}",
]


def _train(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "train.py", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _common(data_root: Path, logs: Path, marker: Path) -> list[str]:
    fast = [o for o in FAST_CLI if not o.startswith(("trainer.max_epochs", "+trainer.limit_train"))]
    return [
        *fast,
        *LONGER,
        *KILL,
        f"+callbacks.kill.marker={marker}",
        f"data.root={data_root}",
        f"paths.log_dir={logs}",
    ]


def _metrics(folder: Path) -> dict[str, dict[str, float | None]]:
    return {path.parent.name: RunRecord.read(path).metrics for path in folder.rglob("metrics.json")}


def test_a_killed_sweep_resumed_equals_an_uninterrupted_one(data_root: Path, tmp_path: Path):
    never = tmp_path / "never"
    never.touch()  # the uninterrupted sweep's marker exists: it is not killed
    straight = _train("-m", *SWEEP, *_common(data_root, tmp_path / "straight", never))
    assert straight.returncode == 0, straight.stderr[-3000:]
    marker = tmp_path / "killed"
    common = _common(data_root, tmp_path / "killed_logs", marker)
    killed = _train("-m", *SWEEP, *common)
    assert killed.returncode == -signal.SIGKILL and marker.exists()
    (folder,) = (tmp_path / "killed_logs" / "multiruns").iterdir()
    statuses = {p.parent.name: RunRecord.read(p).status for p in folder.rglob("metrics.json")}
    assert statuses == {
        "init=xavier_normal,seed=0": "finished",
        "init=xavier_normal,seed=1": "finished",
        "init=kaiming_normal,seed=0": "running",
    }
    resumed = _train("-m", *SWEEP, *common, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (again,) = (tmp_path / "killed_logs" / "multiruns").iterdir()
    assert again == folder
    (expected_folder,) = (tmp_path / "straight" / "multiruns").iterdir()
    expected, got = _metrics(expected_folder), _metrics(folder)
    assert got.keys() == expected.keys() and len(got) == 4
    for name, metrics in expected.items():
        assert got[name] == pytest.approx(metrics, rel=1e-5), name


def test_a_killed_run_resumed_equals_an_uninterrupted_one(data_root: Path, tmp_path: Path):
    never = tmp_path / "never"
    never.touch()
    one = ["init=kaiming_normal", "seed=0", "model.depth=2", "model.width=16"]
    first = [*one, *_common(data_root, tmp_path / "a", never), f"hydra.run.dir={tmp_path / 'a'}"]
    straight = _train(*first)
    assert straight.returncode == 0, straight.stderr[-3000:]
    marker = tmp_path / "killed"
    args = [*one, *_common(data_root, tmp_path / "b", marker), f"hydra.run.dir={tmp_path / 'b'}"]
    assert _train(*args).returncode == -signal.SIGKILL
    assert RunRecord.read(tmp_path / "b" / "metrics.json").status == "running"
    resumed = _train(*args, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = RunRecord.read(tmp_path / "b" / "metrics.json")
    expected = RunRecord.read(tmp_path / "a" / "metrics.json")
    assert got.status == "finished" and got.metrics == pytest.approx(expected.metrics, rel=1e-5)


def test_an_unwritable_checkpoint_folder_fails_its_run_and_the_sweep_goes_on(
    data_root: Path, tmp_path: Path
):
    """A checkpoint folder that cannot be made (under /proc, which no one can write, root
    included): that run is failed, with one line on the console and its traceback in its
    train.log; the other run of the sweep finishes."""
    folders = f"callbacks.model_checkpoint.dirpath=/proc/initbench/ckpt,{tmp_path / 'ckpt'}"
    args = ["-m", folders, "model.depth=2", "model.width=16", *FAST_CLI]
    result = _train(*args, f"data.root={data_root}", f"paths.log_dir={tmp_path / 'logs'}")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    (line,) = [line for line in output.splitlines() if "run failed" in line]
    assert "/proc/initbench" in line
    records = [RunRecord.read(p) for p in (tmp_path / "logs").rglob("metrics.json")]
    assert sorted(r.status for r in records) == ["failed", "finished"]
    (failed,) = [r for r in records if r.status == "failed"]
    assert "/proc/initbench" in failed.error
    assert "Traceback" in (Path(failed.output_dir) / "train.log").read_text()
