"""The config a command line would run, composed in Python (notebooks, scripts, tests)."""

from datetime import datetime
from pathlib import Path

import hydra
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from resolvers import run_name  # importing it registers the resolvers the configs use

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def compose(*overrides: str, output_dir: str | Path | None = None) -> DictConfig:
    """The config ``python train.py OVERRIDES`` would run:
    ``train.train(train.compose("model=cnn", "init=lsuv"))``. The run's folder is
    ``output_dir``, or as on the command line ``logs/runs/<overrides>/<time>``."""
    cfg = compose_config(list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        name, now = run_name(",".join(overrides)), f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
        cfg.paths.output_dir = str(output_dir or f"{cfg.paths.log_dir}/runs/{name}/{now}")
    return cfg


def compose_config(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """The composed config of ``overrides`` (Hydra's compose API on ``conf/``), leaving no
    Hydra instance behind: ``@hydra.main`` starts its own."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return hydra.compose(
                "config", overrides=overrides, return_hydra_config=return_hydra_config
            )
    finally:
        GlobalHydra.instance().clear()
