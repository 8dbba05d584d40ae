"""OmegaConf resolvers the configs use: run, sweep and job folder names, one GPU per sweep job.

Registered on import (``runs.compose``, which ``train.py`` imports, imports this module
before Hydra composes anything).
"""

import hashlib
from datetime import datetime
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf

from sweeps.keys import override_key, swept_keys

MAX_NAME = 150  # file systems allow 255 bytes per folder name; leave room for the hash


def run_name(overrides: str) -> str:
    """The run folder's name: its overrides (``init=kaiming,model=resnet``), ``defaults`` when
    there are none, ``/`` in a value replaced (one folder, not nested ones), and when too long
    for a folder name the first part plus a short hash of the whole, so distinct runs never
    share a folder."""
    overrides = overrides.replace("/", "_")
    if len(overrides.encode()) <= MAX_NAME:
        return overrides or "defaults"
    digest = hashlib.sha1(overrides.encode()).hexdigest()[:8]
    return f"{overrides.encode()[:MAX_NAME].decode(errors='ignore')}~{digest}"


def job_name(override_dirname: str) -> str:
    """A sweep job's folder name: only its values of the keys the sweep varies, in the order
    of its overrides (``init=lsuv,model=cnn,seed=2``), so TensorBoard's run list leads with what
    is compared; fixed and technical overrides stay in ``.hydra/overrides.yaml``. The swept
    keys are read from the sweep's ``multirun.yaml``, which Hydra writes before any job starts,
    also for the joblib and submitit launchers. Without it, ``override_dirname``."""
    hydra = HydraConfig.get()
    swept = swept_keys(Path(hydra.sweep.dir) / "multirun.yaml")
    if not swept:
        return run_name(override_dirname)
    overrides = OverridesParser.create().parse_overrides(list(hydra.overrides.task))
    chosen = [o for o in overrides if override_key(o) in swept]
    return run_name(",".join(f"{override_key(o)}={o.get_value_element_as_str()}" for o in chosen))


def sweep_dir(root: str, resume: bool) -> str:
    """A new timestamped sweep folder, or with ``resume=true`` the latest one under ``root``,
    so that re-running an interrupted sweep's command with ``resume=true`` continues it."""
    if resume:
        previous = sorted(p for p in Path(root).glob("*") if (p / "multirun.yaml").exists())
        if previous:
            return str(previous[-1])
    return f"{root}/{datetime.now():%Y-%m-%d_%H-%M-%S}"


def job_devices(devices: int | str) -> int | str | list[int]:
    """Pin each job of a parallel sweep to its own GPU (job number modulo the GPU count) when
    one job asks for one GPU and several are present; otherwise ``devices`` unchanged."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if str(devices) != "1" or count < 2 or not HydraConfig.initialized():
        return devices
    hydra = HydraConfig.get()
    return [hydra.job.num % count] if hydra.mode == RunMode.MULTIRUN else devices


OmegaConf.register_new_resolver("run_name", run_name, replace=True)
OmegaConf.register_new_resolver("job_name", job_name, replace=True)
# Cached: every job of a sweep (Hydra copies the sweep's resolver cache to each job) gets the
# same folder, also in the worker processes of the joblib launcher.
OmegaConf.register_new_resolver("sweep_dir", sweep_dir, use_cache=True, replace=True)
OmegaConf.register_new_resolver("job_devices", job_devices, replace=True)
