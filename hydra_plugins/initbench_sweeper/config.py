"""``hydra/sweeper=initbench`` in Hydra's ConfigStore (Hydra imports every module of the
``hydra_plugins`` namespace package at start-up, so this registers it for every command)."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class CheckedSweeperConf:
    _target_: str = "hydra_plugins.initbench_sweeper.checked_sweeper.CheckedSweeper"
    max_batch_size: int | None = None  # as Hydra's basic sweeper
    params: dict[str, str] | None = None  # an experiment's sweep, as Hydra's basic sweeper


ConfigStore.instance().store(
    group="hydra/sweeper", name="initbench", node=CheckedSweeperConf, provider="initbench"
)
