"""The house rules a reader relies on: where a run is built, what imports what, and the few
framework internals we cannot avoid, pinned so that a framework release that moves them fails
here first."""

import ast
from pathlib import Path

import lightning as L

from tests.support import ROOT


def _imports(path: Path) -> set[str]:
    """Every module a Python file imports (``from a.b import c`` gives ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_population_and_launcher_do_not_import_the_cli() -> None:
    """Both paths build a run through ``runs.build``; ``train.py`` is only the command line."""
    files = [*ROOT.glob("population/*.py"), *ROOT.glob("hydra_plugins/**/*.py")]
    assert files
    for path in files:
        assert "train" not in _imports(path), path
    assert "runs.build" in _imports(ROOT / "population" / "run.py")
    assert "runs.build" in _imports(ROOT / "runs" / "single.py")


def test_configs_name_no_experiment_code() -> None:
    """``conf/`` is the product's: nothing in it points into ``benchmarks/``."""
    for path in ROOT.glob("conf/**/*.yaml"):
        assert "benchmarks." not in path.read_text(), path


def test_no_file_is_packed_to_a_line_budget() -> None:
    skip = "# fmt: " + "skip"  # split, so this file does not match itself
    for path in ROOT.glob("**/*.py"):
        if ".venv" not in path.parts:
            assert skip not in path.read_text(), path


def test_the_lightning_internals_we_use_are_where_we_expect() -> None:
    """``population.module`` logs each member's learning rate on Lightning's logging steps,
    at Lightning's step counter; ``population.checkpoints`` saves the loops' state as a single
    run's checkpoint holds it. No public API gives these (lightning is bounded in
    pyproject.toml); this test names what moved when a release breaks them."""
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    assert isinstance(trainer._logger_connector.should_update_logs, bool)
    assert isinstance(trainer.fit_loop.epoch_loop._batches_that_stepped, int)
    loops = trainer._checkpoint_connector._get_loops_state_dict()
    assert {"fit_loop", "validate_loop", "test_loop", "predict_loop"} <= set(loops)
