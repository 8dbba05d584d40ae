"""Bad input gets one clear line: every row of the README's "When a value is wrong" table is
what a user reads, and the command line prints it alone, with exit status 1."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from torchvision import datasets

from runs.preflight import preflight
from runs.record import RunRecord
from tests.support import FAST_CLI, OFFLINE, README, ROOT
from train import error_message, train


def _table() -> list[tuple[str, str, str]]:
    """(command, condition in parentheses, message) of each row of the README's table."""
    section = README.split("### When a value is wrong", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `python train\.py ([^`]+)`( \([^)]*\))? \| `([^`]+)`", section, re.M)
    return [(command, condition.strip(" ()"), message) for command, condition, message in rows]


ROWS = _table()


def test_the_table_covers_the_bad_inputs_users_met() -> None:
    commands = {command for command, _, _ in ROWS}
    assert len(ROWS) >= 12
    for needle in ("model.norm=", "optimizer.lr=", "model.depth=0", "init=fixup", "data=cifar10"):
        assert any(needle in c for c in commands), needle
    for needle in ("ckpt_path=", "max_epochs=-1", "images_every_n_steps=0", "model.channels="):
        assert any(needle in c for c in commands), needle


def _in_order(message: str, text: str) -> None:
    """Each part of the documented message in ``text``, in order ('…': a path or a list)."""
    position = 0
    for part in message.split("…"):
        found = text.find(part, position)
        assert found >= 0, f"{part!r} not in {text!r}"
        position = found + len(part)


@pytest.mark.parametrize(("command", "condition", "message"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_gives_the_documented_message(
    make_cfg, tmp_path: Path, monkeypatch, command: str, condition: str, message: str
) -> None:
    """What ``python train.py`` does, in-process: the pre-flight (misspelt keys and choices,
    output folders), then the run (every value checked before anything is built)."""
    overrides = shlex.split(command)
    if "no files" in condition:
        overrides.append(f"data.root={tmp_path / 'empty'}")
    if "offline" in condition:  # torchvision's mirrors, moved to a port where nothing listens
        monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    text = preflight(overrides)
    if text is None:
        with pytest.raises(Exception) as error:
            train(make_cfg(*overrides))
        text = error_message(error.value)
    _in_order(message, text)
    assert "Traceback" not in text and "HYDRA_FULL_ERROR" not in text  # a user error, not a bug


@pytest.mark.slow
@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
@pytest.mark.parametrize(("command", "condition", "message"), ROWS, ids=[r[0] for r in ROWS])
def test_the_command_line_names_each_bad_value(
    data_root: Path, tmp_path: Path, command: str, condition: str, message: str, sweep: bool
) -> None:
    """Each row typed as a user types it, alone and as a sweep (``-m``): a non-zero exit, no
    traceback, the documented message on one line, and in a sweep no run that trained."""
    if sweep:  # a sweep writes into its sweep folder, never a run folder
        command = command.replace("hydra.run.dir", "hydra.sweep.dir")
        message = message.replace("hydra.run.dir", "hydra.sweep.dir")
    root = tmp_path / "empty" if "no files" in condition else data_root
    args = [*(["-m"] if sweep else []), *shlex.split(command), f"data.root={root}"]
    args += [f"paths.log_dir={tmp_path / 'logs'}"]
    result = _cli(*args, env={})
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output, output[-3000:]
    first = message.split("…")[0]
    (line,) = [line for line in output.splitlines() if first in line][:1] or [output]
    _in_order(message, line)
    if sweep:  # checked before the run (none started), or found when it was built: failed
        records = [RunRecord.read(p) for p in (tmp_path / "logs").rglob("metrics.json")]
        assert all(record.status == "failed" for record in records)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    flags = [a for a in args if a.startswith("-")]  # Hydra's flags come first
    overrides = [a for a in args if not a.startswith("-")]
    command = [sys.executable, "train.py", *flags, *FAST_CLI, *overrides]  # the case's win
    env = {**os.environ, **OFFLINE, **env}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_the_command_line_prints_one_line_and_exits_1(data_root: Path, tmp_path: Path) -> None:
    args = ("model.norm=batchnrom", f"data.root={data_root}", f"hydra.run.dir={tmp_path}")
    result = _cli(*args, env={})
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "batchnrom" in line]
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].endswith("choose one of: none, layernorm, batchnorm")
    full = _cli(*args, env={"HYDRA_FULL_ERROR": "1"})
    assert full.returncode == 1 and "Traceback" in full.stderr


def test_a_bug_keeps_its_type_and_says_where_the_traceback_is() -> None:
    text = error_message(IndexError("index 0 is out of bounds"))
    assert text == "IndexError: index 0 is out of bounds (HYDRA_FULL_ERROR=1 shows the traceback)"
