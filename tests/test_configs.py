"""Every choice of every group composes and instantiates; bad values fail early and plainly."""

import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, InstantiationException
from hydra.utils import get_class
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig

from datamodules import DataNotFoundError
from tests.support import CONF_DIR, ROOT
from train import build, train

GROUPS = [
    "data",
    "model",
    "init",
    "optimizer",
    "scheduler",
    "parametrization",
    "trainer",
    "logger",
    "callbacks",
    "stats",
]
CHOICES = [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))]


# Choices that only make sense with another one.
PAIRED = {
    ("init", "fixup"): ["model=resnet", "model.depth=8", "model.norm=none"],
    ("init", "zero_init_residual"): ["model=resnet", "model.depth=8"],
    ("init", "rezero"): ["model=resnet", "model.depth=8"],
    ("init", "skipinit"): ["model=resnet", "model.depth=8", "model.norm=none"],
    ("init", "delta_orthogonal"): ["model=cnn"],  # the default mlp has no conv: refused
    ("init", "irnn"): ["model=rnn", "model.activation=relu"],
}


def _lr_factor(cfg: DictConfig, step: int, total: int) -> float:
    """The schedule's factor at ``step`` of ``total``, as its YAML comment states it."""
    name, scheduler = cfg.hydra.runtime.choices.scheduler, cfg.scheduler
    if name == "constant":
        return 1.0
    if name == "cosine":  # from the optimizer's lr to 0 over the run (no warmup configured)
        assert scheduler.warmup == 0
        return 0.5 * (1 + math.cos(math.pi * step / total))
    if name == "multistep":  # times gamma at each milestone, given as fractions of the run
        return scheduler.gamma ** sum(step >= m * total for m in scheduler.milestones)
    raise AssertionError(f"a new scheduler, {name}: add its formula here")


def _expected_callbacks(cfg: DictConfig) -> Counter:
    """The callback types the config names, without the progress bar the trainer's switch
    drops, plus the statistics unless stats=off."""
    types = [get_class(c._target_) for c in cfg.callbacks.values()]
    if not cfg.trainer.get("enable_progress_bar", True):
        types = [t for t in types if not issubclass(t, ProgressBar)]
    if cfg.hydra.runtime.choices.stats != "off":
        types.append(get_class(cfg.stats._target_))
    return Counter(types)


@pytest.mark.parametrize(("group", "choice"), CHOICES, ids=[f"{g}={c}" for g, c in CHOICES])
def test_every_choice_composes_and_builds(make_cfg, group: str, choice: str) -> None:
    cfg = make_cfg(f"{group}={choice}", *PAIRED.get((group, choice), []))
    assert cfg.hydra.runtime.choices[group] == choice
    trainer, module, _ = build(cfg)
    optimizer = module.optimizer_factory(module.parameters())
    total = 20  # the milestones (50 %, 75 %) fall on whole steps: no rounding to argue over
    scheduler = module.scheduler_factory(optimizer, total)
    for step in range(total + 1):
        expected = cfg.optimizer.lr * _lr_factor(cfg, step, total)
        assert scheduler.get_last_lr() == pytest.approx([expected], abs=1e-12), step
        optimizer.step()
        scheduler.step()
    found = Counter(type(c) for c in trainer.callbacks)
    assert not _expected_callbacks(cfg) - found, (_expected_callbacks(cfg), found)
    assert not any(isinstance(c, ProgressBar) for c in trainer.callbacks)  # FAST switches it off


def test_kaiming_is_an_alias_of_kaiming_normal(make_cfg) -> None:
    assert make_cfg("init=kaiming").init == make_cfg("init=kaiming_normal").init


def test_unknown_choice_lists_the_available_ones(make_cfg) -> None:
    with pytest.raises(ConfigCompositionException) as error:
        make_cfg("model=transformer")
    assert "transformer" in str(error.value) and "resnet" in str(error.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.norm=batchnrom", "unknown norm 'batchnrom'; choose one of: none, layernorm"),
        ("model=lstm model.norm=batchnorm", "unknown norm for the LSTM 'batchnorm'; choose one"),
        ("model.activation=swish", "unknown activation 'swish'; choose one of: relu, tanh"),
        ("optimizer.lr=-0.1", "optimizer.lr=-0.1: expected a number > 0"),
        ("init.mode=fan_middle", "unknown fan mode 'fan_middle'; choose one of: fan_in"),
        ("data.batch_size=0", "data.batch_size=0: expected an integer >= 1"),
        ("seed=abc", "seed=abc: expected an integer >= 0 and <= 4294967295"),
        ("model.depth=2.5", "model.depth=2.5: expected an integer >= 1"),
        ("init=orthogonal init.gain=-1", "init.gain=-1: expected a number > 0, or null"),
    ],
)
def test_bad_value_fails_before_data_loads(make_cfg, override: str, message: str) -> None:
    # The data root does not exist: a data error here would mean the check came too late.
    cfg = make_cfg(*override.split(), "data.root=/nonexistent/initbench")
    with pytest.raises((ValueError, InstantiationException)) as error:
        train(cfg)
    assert message in str(error.value)
    assert not isinstance(error.value, DataNotFoundError)


@pytest.mark.parametrize("data", ["mnist", "fashion_mnist", "cifar10", "cifar100"])
def test_missing_data_names_path_files_variable_and_switch(make_cfg, tmp_path: Path, data: str):
    cfg = make_cfg(f"data={data}", f"data.root={tmp_path / 'empty'}")
    with pytest.raises(DataNotFoundError) as error:
        train(cfg)
    text = str(error.value)
    for needle in (str(tmp_path / "empty"), "INITBENCH_DATA", "data.download=true", "Expected"):
        assert needle in text
    expected = {"mnist": "train-images-idx3-ubyte", "cifar100": "cifar-100-python/train"}
    assert expected.get(data, "") in text
    advice = re.findall(r"data\.\w+=\w+", text)  # what the message tells the user to type
    assert "data.download=true" in advice
    assert make_cfg(f"data={data}", *advice).data.download is True  # and it composes


def _cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.mark.slow
def test_help_lists_groups_and_choices() -> None:
    text = _cli("--help")
    for needle in (
        "initbench",
        "model: cnn, gru, lstm, mlp, resnet, rnn",
        "init:",
        "kaiming_normal",
    ):
        assert needle in text


@pytest.mark.slow
def test_cfg_job_prints_the_resolved_config() -> None:
    text = _cli("--cfg", "job", "model=cnn", "init=xavier_uniform")
    assert "_target_: models.CNN" in text and "distribution: uniform" in text


def test_model_optimizer_specialization_and_cli_precedence(make_cfg) -> None:
    assert make_cfg("model=cnn").optimizer.lr == 0.02
    assert make_cfg("model=lstm").optimizer.lr == 0.1
    assert make_cfg("model=rnn").optimizer.lr == 0.01
    assert make_cfg("model=rnn").trainer.gradient_clip_val == 1.0
    assert make_cfg("model=mlp").optimizer.lr == 0.05
    assert make_cfg("model=cnn", "optimizer=adam").optimizer.lr == 1e-3
    assert make_cfg("model=cnn", "optimizer.lr=0.3").optimizer.lr == 0.3
    assert make_cfg("model=resnet", "init=fixup").optimizer.lr == 0.02
