"""Every value a user sets, checked for type and range right after compose, before any data
loads: one line per bad value that names its full key, the value and what is expected.

Why by hand: Hydra's structured configs check types but not ranges, and our YAML files are
``_target_`` plus the values they change (DESIGN: configs name code), so a schema per group
would restate every constructor. The rules below cover the values users type; a class's own
checks (``model.depth`` of a ResNet is 6n+2, a model's norm names) still speak for the rest.
"""

import math
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

ABSENT = object()  # a key the run's config does not have (another group's knob)
SEED_MAX = 2**32 - 1  # numpy's seeds, which Lightning's seed_everything sets too


@dataclass(frozen=True)
class Rule:
    """What a key accepts: a number (``integer``: a whole one) in [``low``, ``high``], the
    bounds open where ``low_open``/``high_open``; None where ``optional``."""

    low: float = -math.inf
    high: float = math.inf
    integer: bool = False
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def problem(self, value: object) -> str | None:
        """What is wrong with ``value`` (None: nothing)."""
        if value is None and self.optional:
            return None
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or (self.integer and isinstance(value, float)):
            return f"expected {self.expected()}"
        if math.isnan(value) or not self._inside(value):
            return f"expected {self.expected()}"
        return None

    def _inside(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def expected(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low = f"> {_number(self.low)}" if self.low_open else f">= {_number(self.low)}"
        high = f"< {_number(self.high)}" if self.high_open else f"<= {_number(self.high)}"
        if self.low == -math.inf:
            text = f"{kind} {high}" if self.high != math.inf else kind
        elif self.high == math.inf:
            text = f"{kind} {low}"
        else:
            text = f"{kind} {low} and {high}"
        return text + (", or null" if self.optional else "")


POSITIVE = Rule(low=0, low_open=True)
NON_NEGATIVE = Rule(low=0)
COUNT = Rule(low=1, integer=True)
RULES: dict[str, Rule] = {
    "seed": Rule(low=0, high=SEED_MAX, integer=True),
    "optimizer.lr": POSITIVE,
    "optimizer.momentum": Rule(low=0, high=1, high_open=True),
    "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.eps": POSITIVE,
    "callbacks.divergence_guard.max_loss": POSITIVE,
    "callbacks.divergence_guard.every_n_steps": COUNT,
    "init.gain": Rule(low=0, low_open=True, optional=True),
    "init.std": NON_NEGATIVE,
    "init.scale": NON_NEGATIVE,
    "init.input_std": NON_NEGATIVE,
    "init.value": Rule(optional=True),
    "init.k": COUNT,
    "init.tolerance": POSITIVE,
    "init.max_iters": COUNT,
    "init.forget_bias": Rule(optional=True),
    "init.truncate": Rule(low=0, low_open=True, optional=True),
    "init.mean": Rule(),
    "init.low": Rule(),
    "init.high": Rule(),
    "data.seed": Rule(low=0, high=SEED_MAX, integer=True),
    "data.split_seed": Rule(low=0, high=SEED_MAX, integer=True),
    "data.batch_size": COUNT,
    "data.eval_batch_size": COUNT,
    "data.val_size": Rule(low=0, integer=True),
    "data.num_workers": Rule(low=0, integer=True),
    "model.depth": COUNT,
    "model.width": COUNT,
    "model.hidden": COUNT,
    "model.hidden_size": COUNT,
    "model.num_layers": COUNT,
    "model.convs_per_stage": COUNT,
    "trainer.max_epochs": Rule(low=-1, integer=True, optional=True),
    "trainer.max_steps": Rule(low=-1, integer=True, optional=True),
    "trainer.log_every_n_steps": COUNT,
    "trainer.gradient_clip_val": Rule(low=0, optional=True),
    "stats.every_n_steps": COUNT,
    "stats.hist_bins": COUNT,
    "stats.hist_limit": POSITIVE,
}


class ConfigError(ValueError):
    """One or more values of a config are out of type or range; its message names each."""


def problems(cfg: DictConfig) -> list[str]:
    """``key=value: expected ...`` for each bad value of ``cfg``: those it has of ``RULES``
    (for the init, its fallback's too), ``init.low < init.high``, ``trainer.devices``."""
    found = []
    fallback = {f"init.fallback.{k[5:]}": r for k, r in RULES.items() if k.startswith("init.")}
    for key, rule in (RULES | fallback).items():
        value = OmegaConf.select(cfg, key, default=ABSENT)
        if value is not ABSENT and (problem := rule.problem(value)) is not None:
            found.append(f"{key}={_shown(value)}: {problem}")
    low, high = (OmegaConf.select(cfg, f"init.{k}", default=None) for k in ("low", "high"))
    if isinstance(low, int | float) and isinstance(high, int | float) and not low < high:
        found.append(f"init.low={low}, init.high={high}: expected init.low < init.high")
    devices = OmegaConf.select(cfg, "trainer.devices", default=ABSENT)
    if devices is not ABSENT and not _devices_ok(devices):
        found.append(
            f"trainer.devices={_shown(devices)}: expected an integer >= 1, -1, 'auto' "
            "or a list of device indices"
        )
    return found


def validate(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` naming every bad value of ``cfg``."""
    found = problems(cfg)
    if found:
        raise ConfigError("; ".join(found))


def _devices_ok(devices: object) -> bool:
    if isinstance(devices, bool):
        return False
    if isinstance(devices, int):
        return devices >= 1 or devices == -1
    if isinstance(devices, str):
        return devices == "auto" or all(p.strip().isdigit() for p in devices.split(",") if p)
    if OmegaConf.is_list(devices) or isinstance(devices, list):
        return all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices)
    return False


def _number(bound: float) -> str:
    """A bound as written: ``0``, ``0.5``, ``4294967295``."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _shown(value: object) -> str:
    """The value as the user typed it: ``abc``, ``-1``, ``[0, 1]``."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value)
    return str(value)
