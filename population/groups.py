"""Which jobs of a sweep train together as one population, and why the others run alone.

Two jobs can share a population when their resolved configs are equal once the keys each
member has its own of are removed (``MEMBER_KEYS``: seed, init, optimizer, schedule, run
folder). Everything else (model, data, batch size, trainer, callbacks, statistics) is the one
Trainer's and the one stacked model's, so it must be equal; comparing the whole resolved config
makes this exact by construction: a key nobody listed splits groups, it is never ignored.
"""

import copy
import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from population.stacked import unstackable

# Each member trains with its own of these (its own model seed and batch order, init, optimizer
# object and state, schedule, figure title and folder): dotted keys of the task config.
MEMBER_KEYS = ("seed", "data.seed", "init", "optimizer", "scheduler", "stats.title", "paths")
OUTPUT_DIR = "<output_dir>"  # every job's own folder, while comparing
PRECISIONS = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed", "64": "64-true"}
POPULATION_PRECISIONS = ("32-true", "bf16-mixed")
ALONE = "alone: no other job shares its settings"
DEFAULT_CALLBACKS = Path(__file__).resolve().parents[1] / "conf" / "callbacks" / "default.yaml"
FREE_CALLBACK_KEYS = ("max_loss", "every_n_steps", "refresh_rate")  # what the population reads
OWN_CALLBACKS = ("model_checkpoint",)  # each member gets its own, with any settings but its class


@dataclass(frozen=True)
class Batch:
    """Jobs (indices into the sweep's list) that run together: a population of several, or
    one job alone with the reason."""

    jobs: tuple[int, ...]
    reason: str | None = None


def plan(configs: Sequence[DictConfig], max_members: int) -> list[Batch]:
    """Split a sweep's jobs (their configs as a launcher loads them, ``hydra`` included) into
    populations of at most ``max_members`` and jobs that run alone, ordered by first job."""
    if max_members < 1:
        raise ValueError(f"hydra.launcher.max_members must be >= 1, got {max_members}")
    batches: list[Batch] = []
    groups: dict[str, list[int]] = {}
    checked: dict[str, list[str]] = {}  # architecture checks, one per distinct model config
    for index, config in enumerate(configs):
        task = resolve(config)
        choice = config.hydra.runtime.choices.get("model")
        reasons = config_reasons(task, bool(config.hydra.job.get("chdir")))
        reasons += model_reasons(task, choice, checked)
        if reasons:
            batches.append(Batch((index,), "; ".join(reasons)))
        else:
            key = json.dumps(
                [without(task, MEMBER_KEYS), _env(config)], sort_keys=True, default=str
            )
            groups.setdefault(key, []).append(index)
    for jobs in groups.values():
        batches += split(jobs, max_members)
    return sorted(batches, key=lambda batch: batch.jobs[0])


def resolve(config: DictConfig) -> dict[str, Any]:
    """The job's task config resolved as its run will see it, with its folder (and every path
    made from it) replaced by one placeholder and its job number by 0 (the number only picks a
    GPU for each job of a parallel sweep; a population trains on one device)."""
    config = copy.deepcopy(config)
    hydra = config.hydra
    with (
        read_write(hydra.runtime),
        open_dict(hydra.runtime),
        read_write(hydra.job),
        open_dict(hydra.job),
    ):
        hydra.runtime.output_dir = OUTPUT_DIR
        hydra.job.num = hydra.job.id = 0
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(config)  # ${hydra:runtime.choices.init} and the like
    try:
        with read_write(config), open_dict(config):
            del config["hydra"]
            if "paths" in config:  # a run folder set some other way than by Hydra's
                config.paths.output_dir = OUTPUT_DIR
        return OmegaConf.to_container(config, resolve=True)
    finally:
        hydra_config.cfg = previous


def without(tree: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """A copy of ``tree`` without the dotted ``keys`` (absent ones ignored)."""
    tree = copy.deepcopy(tree)
    for key in keys:
        *parents, leaf = key.split(".")
        node: Any = tree
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return tree


def _env(config: DictConfig) -> Any:
    """The job's environment variables (one process: the members must agree on them)."""
    return OmegaConf.to_container(config.hydra.job.env_set, resolve=True)


def config_reasons(task: dict[str, Any], chdir: bool) -> list[str]:
    """Why the settings of a job (its resolved task config) keep it out of any population."""
    reasons = []
    if task.get("compile"):
        reasons.append("compile=true (one compiled model per run)")
    trainer = task.get("trainer") or {}
    precision = str(trainer.get("precision", "32-true"))
    unified = PRECISIONS.get(precision, precision)
    if unified not in POPULATION_PRECISIONS:
        why = (
            "its loss scale is shared"
            if unified == "16-mixed"
            else "populations: 32-true, bf16-mixed"
        )
        reasons.append(f"trainer.precision={precision} ({why})")
    strategy = str(trainer.get("strategy", "auto"))
    nodes = int(trainer.get("num_nodes") or 1)
    if device_count(trainer) > 1 or nodes > 1 or strategy not in ("auto", "single_device"):
        devices = trainer.get("devices", "auto")
        reasons.append(
            f"trainer.devices={devices} / strategy {strategy} (a population uses one device)"
        )
    if (task.get("data") or {}).get("loader") == "dataloader":
        reasons.append("data.loader=dataloader (populations slice resident tensors)")
    if task.get("ckpt_path") is not None:
        reasons.append("ckpt_path set (a checkpoint resumes one run)")
    if task.get("resume"):
        reasons.append("resume=true (each run resumes its own checkpoint)")
    if chdir:
        reasons.append("hydra.job.chdir=true (members share one working directory)")
    return reasons + callback_reasons(task.get("callbacks") or {})


def callback_reasons(callbacks: dict[str, Any]) -> list[str]:
    """A population reproduces the default callbacks (``conf/callbacks/default.yaml``: its
    checkpoints with any settings, learning-rate log, divergence guard with any thresholds,
    progress bar); a run with another callback, the learning-rate log set otherwise or a
    checkpoint callback of another class runs alone."""
    defaults = _default_callbacks()
    reasons = []
    for name, node in callbacks.items():
        expected = defaults.get(name)
        if expected is None:
            reasons.append(f"callbacks.{name} (a population runs the default callbacks only)")
            continue
        if name in OWN_CALLBACKS:
            expected = {"_target_": expected["_target_"]}
        for key, value in expected.items():
            value = (
                value.replace("${paths.output_dir}", OUTPUT_DIR)
                if isinstance(value, str)
                else value
            )
            if key not in FREE_CALLBACK_KEYS and (node or {}).get(key) != value:
                reasons.append(
                    f"callbacks.{name}.{key}={node.get(key)} (a population keeps "
                    f"the default {value})"
                )
    return reasons


@functools.cache
def _default_callbacks() -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(DEFAULT_CALLBACKS))


def device_count(trainer: dict[str, Any]) -> int:
    """How many devices ``trainer.devices`` asks for (``auto``/-1: every GPU there is)."""
    devices = trainer.get("devices", "auto")
    if isinstance(devices, list):
        return len(devices)
    if str(devices) in ("auto", "-1"):
        gpus = torch.cuda.device_count() if trainer.get("accelerator") != "cpu" else 0
        return max(gpus, 1)
    if isinstance(devices, str) and "," in devices:  # GPU ids, as Lightning reads "0,1"
        return len([d for d in devices.split(",") if d.strip()])
    return int(devices)


def model_reasons(
    task: dict[str, Any], choice: str | None, checked: dict[str, list[str]]
) -> list[str]:
    """Why the job's model has no stacked form (``population.stacked.unstackable``), checked on
    the model built as its run builds it; cached in ``checked`` by model and dataset."""
    key = json.dumps([task["model"], task["data"]["_target_"]], sort_keys=True, default=str)
    if key not in checked:
        data = get_class(task["data"]["_target_"])
        try:
            net = instantiate(OmegaConf.create(task["model"]))(data.input_shape, data.num_classes)
            checked[key] = unstackable(net)
        except Exception as error:  # the run itself reports it, alone, as a single run does
            checked[key] = [f"it does not build ({type(error).__name__}: {error})".splitlines()[0]]
    reasons = checked[key]
    more = f" (and {len(reasons) - 2} more)" if len(reasons) > 2 else ""
    return [f"model={choice}: {'; '.join(reasons[:2])}{more}"] if reasons else []


def split(jobs: list[int], max_members: int) -> list[Batch]:
    """Jobs that can share a population, as populations of at most ``max_members`` of equal
    size (24 jobs, at most 16: two of 12), in order; a job left on its own runs alone."""
    if len(jobs) == 1:
        return [Batch((jobs[0],), ALONE)]
    count = math.ceil(len(jobs) / max_members)
    size, extra = divmod(len(jobs), count)
    batches = []
    start = 0
    for i in range(count):
        end = start + size + (i < extra)
        chunk = tuple(jobs[start:end])
        alone = f"alone: hydra.launcher.max_members={max_members}"
        batches.append(Batch(chunk, alone if len(chunk) == 1 else None))
        start = end
    return batches
