"""A run's knobs: the settings that tell two runs apart, read from its resolved config.

An init's knobs are whatever its config holds (a new ``conf/init/*.yaml`` with a new knob needs
no edit here); the model's, optimizer's and data's are the keys below, which leave out names,
paths and wiring (``data.root``, ``model._target_``).
"""

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runs.record import Value

# Group -> its knobs that tell runs apart, each with the type of its HParams column.
GROUP_KNOBS: dict[str, dict[str, type]] = {
    "model": {
        "norm": str,
        "activation": str,
        "depth": float,
        "width": float,
        "channels": str,
        "convs_per_stage": float,
        "hidden": float,
        "hidden_size": float,
        "num_layers": float,
    },
    "optimizer": {"lr": float, "momentum": float, "weight_decay": float},
    "data": {"batch_size": float, "augment": bool},
}
WIRING = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")


def init_knobs(init: Mapping[str, Any] | None, resolve: bool = True) -> dict[str, Value]:
    """The init's settings, nested ones (a fallback init's) as ``fallback.gain``; unset
    (null: "from the model") knobs left out, and with ``resolve=False`` interpolated ones."""
    if init is None:
        return {}
    plain = OmegaConf.to_container(init, resolve=resolve) if OmegaConf.is_config(init) else init
    knobs = dict(_flatten(plain, prefix=""))
    return {k: v for k, v in knobs.items() if not (isinstance(v, str) and "${" in v)}


def _flatten(node: Mapping[str, Any], prefix: str) -> list[tuple[str, Value]]:
    items = []
    for key, value in node.items():
        if key in WIRING or key == "defaults" or value is None:
            continue
        if isinstance(value, Mapping):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", as_value(value)))
    return items


def as_value(value: Any, kind: type | None = None) -> Value:
    """A config value as an HParams cell: bool, a number as it is, or text (a list as its
    text)."""
    if kind is str or isinstance(value, list | tuple | dict):
        return str(value)
    if kind is bool or isinstance(value, bool):
        return bool(value)
    if kind is float and isinstance(value, str):
        return value  # not a number after all: shown as typed
    if isinstance(value, int | float):
        return value
    return str(value)


def group_knobs(cfg: DictConfig) -> dict[str, Value]:
    """``model.depth``, ``optimizer.lr``, ...: the values of ``GROUP_KNOBS`` the run has."""
    knobs: dict[str, Value] = {}
    for group, keys in GROUP_KNOBS.items():
        node = cfg.get(group) or {}
        for key, kind in keys.items():
            value = node.get(key) if key in node else None
            if value is not None:
                plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
                knobs[f"{group}.{key}"] = as_value(plain, kind)
    return knobs
