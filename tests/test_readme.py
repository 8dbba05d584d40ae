"""The README cannot drift from the code: every command it shows composes (``python train.py``)
or parses its arguments (``python -m benchmarks.*``, ``python -m tools.*``), its YAML examples
compose, and its Quick start runs offline to the end."""

import argparse
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import Container, DictConfig, OmegaConf

from tests.support import CONF_DIR, FAST_CLI, OFFLINE, README, ROOT

FLAGS = {"-m", "--multirun", "--help", "--cfg", "job", "hydra", "all"}  # not overrides


def _shell_snippets(text: str) -> list[str]:
    """Every line of a code block (continuations joined) and every inline code span."""
    spans = re.findall(r"(?<!`)`([^`]+?)`(?!`)", re.sub(r"```.*?```", "", text, flags=re.S))
    snippets = [" ".join(span.split()) for span in spans if "\n\n" not in span]
    for language, block in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S):
        if language in ("bash", "yaml", ""):
            snippets += block.replace("\\\n", " ").splitlines()
    return snippets


def _commands(program: str) -> list[list[str]]:
    """The argument lists after ``program`` (``python train.py``, ``python -m tools.audit``)
    in every snippet, with comments, ``&&`` chains and ``VAR=value`` prefixes removed."""
    commands = []
    for snippet in _shell_snippets(README):
        if program not in snippet:
            continue
        snippet = snippet.split("->")[-1]  # "# conf/init/my_init.yaml  ->  python train.py ..."
        words = shlex.split(snippet, comments=True)
        line = " ".join(w if w == "&&" else shlex.quote(w) for w in words)
        for part in line.split("&&"):
            if program in part:  # after "VAR=value", "srun", ...
                commands.append(shlex.split(part.split(program, 1)[1]))
    return commands


TRAIN_COMMANDS = _commands("python train.py")
MODULE_COMMANDS = [
    (f"{package}.{args[0]}", args[1:])
    for package in ("benchmarks", "tools")
    for args in _commands(f"python -m {package}.")
    if "<" not in args[0]  # python -m tools.<name>: the pattern, not a command
]


# The error table's rows that are not meant to compose (tests/test_errors.py checks them).
MISSPELT = {"init=lsuv init.tol=0.1", "model=mpl"}


def _compose(overrides: list[str], searchpath: Path | None = None) -> DictConfig:
    GlobalHydra.instance().clear()
    if searchpath is not None:
        overrides = [*overrides, f"hydra.searchpath=[file://{searchpath}]"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    GlobalHydra.instance().clear()
    return cfg


def _assert_took_effect(cfg: DictConfig, overrides: list[str]) -> None:
    """Each plain ``key=value`` override is in ``cfg``: a group's choice in
    ``hydra.runtime.choices``, any other key at its value. Deletions, package overrides and
    values that interpolate (``${...}``, resolved only in a run) are not checked."""
    choices = cfg.hydra.runtime.choices
    for override in OverridesParser.create().parse_overrides(overrides):
        key, value = override.key_or_group, override.value()
        if override.is_delete() or override.package is not None or "${" in str(value):
            continue
        if key in choices:
            assert choices[key] == value, (key, choices[key], value)
            continue
        actual = OmegaConf.select(cfg, key, throw_on_missing=True)
        if isinstance(actual, Container):
            actual = OmegaConf.to_container(actual)
        assert actual == value, (key, actual, value)


def _yaml_examples(tmp_path: Path) -> Path:
    """The README's example config files (a YAML block headed ``# conf/GROUP/NAME.yaml``),
    written into a config search path."""
    for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S):
        header = re.match(r"# conf/(\w+/\w+\.yaml)", block)
        if header:
            path = tmp_path / header.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block)
    return tmp_path


def test_the_readme_shows_commands() -> None:
    assert len(TRAIN_COMMANDS) >= 25 and len(MODULE_COMMANDS) >= 5
    assert ["data.download=true"] in TRAIN_COMMANDS  # the Quick start's


@pytest.mark.parametrize("args", TRAIN_COMMANDS, ids=lambda a: " ".join(a)[:80] or "(none)")
def test_every_train_command_composes(args: list[str], tmp_path: Path) -> None:
    """Each value of each swept key, with the other keys at their first value; a row of "When
    a value is wrong" that is a misspelt key or choice fails to compose, as documented."""
    overrides = [a for a in args if a not in FLAGS]
    if " ".join(args) in MISSPELT:
        with pytest.raises((ConfigCompositionException, MissingConfigException)):
            _compose(overrides)
        return
    parsed = OverridesParser.create().parse_overrides(overrides)
    plain = [o.input_line if not o.is_sweep_override() else None for o in parsed]
    for i, override in enumerate(parsed):
        if override.is_sweep_override():
            plain[i] = f"{override.get_key_element()}={next(override.sweep_string_iterator())}"
    _assert_took_effect(_compose(plain, _yaml_examples(tmp_path)), plain)
    for i, override in enumerate(parsed):
        if override.is_sweep_override():
            for value in override.sweep_string_iterator():
                key = override.get_key_element()
                swept = plain[:i] + [f"{key}={value}"] + plain[i + 1 :]
                _assert_took_effect(_compose(swept, tmp_path), swept)


class _Parsed(Exception):
    """Raised right after a module's argument parser accepted the README's arguments."""


@pytest.mark.parametrize(
    ("module", "args"), MODULE_COMMANDS, ids=lambda v: v if isinstance(v, str) else " ".join(v)
)
def test_every_module_command_parses(module: str, args: list[str], monkeypatch) -> None:
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, *a, **k):
        parse_args(self, *a, **k)  # argparse exits with status 2 on a bad argument
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [module, *args])
    with pytest.raises(_Parsed):
        importlib.import_module(module).main()


def _quick_start(data_root: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "train.py", "data.download=true", *FAST_CLI]
    command += [f"data.root={data_root}", f"hydra.run.dir={tmp_path / 'run'}"]
    env = {**os.environ, **OFFLINE}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_quick_start_runs_offline_when_the_data_is_there(data_root: Path, tmp_path: Path):
    result = _quick_start(data_root, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "finished in" in result.stdout and "tensorboard --logdir" in result.stdout
    assert "litlogger" not in result.stdout + result.stderr  # Lightning's advertisement


@pytest.mark.slow
def test_quick_start_without_data_fails_in_one_line(tmp_path: Path) -> None:
    result = _quick_start(tmp_path / "nothing", tmp_path)
    errors = [line for line in result.stdout.splitlines() if "[ERROR]" in line]
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert len(errors) == 1 and "network could not be reached" in errors[0], result.stdout


@pytest.mark.slow
def test_train_imports_and_composes_from_any_directory(tmp_path: Path) -> None:
    """What a notebook elsewhere does (the package is installed, not on the path)."""
    code = "import train; print(train.compose('model=cnn').model._target_)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("models.CNN")


GROUPS = [
    "model",
    "init",
    "data",
    "optimizer",
    "scheduler",
    "trainer",
    "logger",
    "stats",
    "experiment",
]


@pytest.mark.parametrize("group", GROUPS)
def test_the_configs_table_lists_every_choice(group: str) -> None:
    """A new YAML file in a config group is a choice users must find in the README."""
    row = re.search(rf"^\| `{group}` \| (.*?) \|", README, flags=re.M)
    listed = set(re.findall(r"`([^`]+)`", row.group(1)))
    files = {p.stem for p in (CONF_DIR / group).glob("*.yaml")}
    assert files <= listed, sorted(files - listed)
