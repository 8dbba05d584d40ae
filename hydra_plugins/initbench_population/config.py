"""``hydra/launcher=population`` in Hydra's ConfigStore (Hydra imports every module of the
``hydra_plugins`` namespace package at start-up, so this registers it for every command)."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class PopulationLauncherConf:
    _target_: str = "hydra_plugins.initbench_population.population_launcher.PopulationLauncher"
    max_members: int = 32  # a larger group runs as several populations, one after another


ConfigStore.instance().store(
    group="hydra/launcher", name="population", node=PopulationLauncherConf, provider="initbench"
)
