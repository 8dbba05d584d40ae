"""Which keys a sweep varies: the one place that answers it, from the sweep's declaration
(``multirun.yaml``, before any job runs: run folder names) or from its jobs' overrides (the
launcher's log, the report's cells)."""

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import OmegaConf

# Keys that change how a run is carried out, not what it measures: a sweep continued with
# resume=true, moved data or logs, or quieter output is the same experiment.
TECHNICAL = (
    "resume",
    "ckpt_path",
    "paths",
    "data.root",
    "hydra",
    "logger",
    "stats",
    "callbacks.model_checkpoint",
    "callbacks.lr_monitor",
    "callbacks.progress_bar",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.enable_checkpointing",
    "trainer.log_every_n_steps",
)


def is_technical(key: str) -> bool:
    """Whether an override key (``paths.log_dir``, ``hydra/launcher``) is in ``TECHNICAL``."""
    return any(key == t or key.startswith((f"{t}.", f"{t}/")) for t in TECHNICAL)


def override_key(override: Override) -> str:
    """``init``, ``init@init.fallback``, ``trainer.x`` (of ``+trainer.x``): the key and the
    package, without the add/delete prefixes."""
    return override.get_key_element().lstrip("+~")


def as_dict(overrides: Iterable[str]) -> dict[str, str]:
    """Overrides as key -> value, keys without Hydra's ``+``/``++``/``~`` prefixes."""
    pairs = (o.split("=", 1) for o in overrides if "=" in o)
    return {key.lstrip("+~"): value for key, value in pairs}


def varying_keys(
    jobs: Sequence[Iterable[str]], ignore: Iterable[str] = (), technical: bool = True
) -> list[str]:
    """The keys whose values differ between the jobs' overrides (a key some jobs lack also
    differs), in the order they first appear, minus ``ignore`` and, unless ``technical``, the
    technical keys."""
    values: dict[str, set[str]] = {}
    parsed = [as_dict(job) for job in jobs]
    for job in parsed:
        for key, value in job.items():
            values.setdefault(key, set()).add(value)
    for job in parsed:
        for key in values:
            values[key].add(job.get(key, ""))
    skip = set(ignore)
    return [
        key
        for key, seen in values.items()
        if len(seen) > 1 and key not in skip and (technical or not is_technical(key))
    ]


def swept_keys(multirun_yaml: Path) -> set[str]:
    """The keys with several values in a sweep's declaration: on its command line
    (``init=a,b``) or in its experiment's ``hydra.sweeper.params``."""
    if not multirun_yaml.exists():
        return set()
    return set(_declared(str(multirun_yaml), multirun_yaml.stat().st_mtime_ns))


@lru_cache(maxsize=8)  # every job of a sweep asks; the file is written once, before them
def _declared(path: str, mtime: int) -> tuple[str, ...]:
    sweep = OmegaConf.load(path).hydra
    params = sweep.sweeper.get("params") or {}
    lines = list(sweep.overrides.task) + [f"{k}={v}" for k, v in params.items()]
    parsed = OverridesParser.create().parse_overrides(lines)
    return tuple(override_key(o) for o in parsed if o.is_sweep_override())
