"""``pip install .`` (not editable) ships every module and every config, and its ``train``
trains from the installed ``conf/`` with no checkout in sight."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.support import FAST_CLI, ROOT

pytestmark = pytest.mark.slow  # builds a wheel and installs it, in subprocesses

NOT_SHIPPED = ("tests",)  # top-level folders whose modules stay in the checkout


def source_files() -> list[str]:
    """The checkout's files as git sees them: tracked or new, not ignored, not deleted."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to list its files")
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(p for p in set(listing.split("\0")) if p and (ROOT / p).is_file())


def pip(*args: str) -> None:
    """This venv's pip, offline: nothing to fetch with ``--no-deps --no-build-isolation``."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "-q", *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The wheel, built offline from a copy of the source (so setuptools' ``build/`` and
    egg-info stay out of the checkout), and the files it was built from."""
    files = source_files()
    tmp = tmp_path_factory.mktemp("packaging")
    for name in files:
        (tmp / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp / "src" / name)
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(tmp / "src"))
    (wheel,) = (tmp / "dist").glob("initbench-*.whl")
    return wheel, files


def test_wheel_holds_every_module_and_config(built: tuple[Path, list[str]]) -> None:
    wheel, files = built
    shipped = set(zipfile.ZipFile(wheel).namelist())
    configs = {f for f in files if f.startswith("conf/") and f.endswith(".yaml")}
    assert "conf/config.yaml" in configs
    assert configs - shipped == set(), "conf/ files missing: [tool.setuptools.package-data]"
    modules = {f for f in files if f.endswith(".py") and f.split("/")[0] not in NOT_SHIPPED}
    assert {"train.py", "resolvers.py", "conf/__init__.py"} <= modules
    missing = modules - shipped
    assert missing == set(), f"add their packages to [tool.setuptools.packages.find]: {missing}"


def test_installed_train_runs_from_its_own_conf(
    built: tuple[Path, list[str]], data_root: Path, tmp_path: Path
) -> None:
    wheel, _ = built
    site = tmp_path / "site"
    pip("install", "--no-deps", "--target", str(site), str(wheel))
    # -S: the dev venv's editable install (a finder loaded by a .pth file) would otherwise serve
    # any module the wheel lacks from the checkout; the dependencies come through PYTHONPATH.
    libs = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "INITBENCH_DATA")}
    python = [sys.executable, "-S"]
    find_train = "import importlib.util, sys; sys.exit(importlib.util.find_spec('train') is None)"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    unreachable = subprocess.run(
        [*python, "-c", find_train], cwd=cwd, env={**env, "PYTHONPATH": os.pathsep.join(libs)}
    )
    assert unreachable.returncode == 1, "the checkout's train is importable without the wheel"

    run_dir = tmp_path / "run"
    overrides = [f"data.root={data_root}", *FAST_CLI, "stats=off", "logger=csv"]
    done = subprocess.run(
        [*python, "-m", "train", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        env={**env, "PYTHONPATH": os.pathsep.join([str(site), *libs])},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "finished"
    hydra = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]
    (main,) = (s for s in hydra["runtime"]["config_sources"] if s["provider"] == "main")
    assert Path(main["path"]).resolve() == (site / "conf").resolve()
