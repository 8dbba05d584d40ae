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
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra.compose("config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        name = run_name(",".join(overrides))
        now = f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
        cfg.paths.output_dir = str(output_dir or f"{cfg.paths.log_dir}/runs/{name}/{now}")
    return cfg
