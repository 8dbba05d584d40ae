"""A command line's overrides, composed once before Hydra runs them, so that a misspelt key or
choice is one short message: the key with the closest valid names (``difflib``), or Hydra's
list of options without its search-path listing. Hydra's own message for a misspelt key
names no alternative, and in a sweep its list of options ends 40 lines of search paths."""

import difflib
import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import (
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from runs.compose import CONFIG_DIR

MULTIRUN_FLAGS = ("-m", "--multirun")
FOLDER_KEYS = ("hydra.run.dir", "hydra.sweep.dir")
MAX_SUGGESTIONS = 3


def preflight(argv: list[str]) -> str | None:
    """Why the command line's overrides cannot compose, in a few lines; None when they do,
    and for command lines with other Hydra flags (``--cfg``, ``--help``...), which Hydra
    handles itself."""
    if any(a.startswith("-") and a not in MULTIRUN_FLAGS for a in argv):
        return None
    overrides = [a for a in argv if a not in MULTIRUN_FLAGS]
    try:
        plain = _first_values(overrides)
    except OverrideParseException:  # a syntax error: Hydra's own message says where
        return None
    try:
        cfg = _compose(plain)
    except ConfigCompositionException as error:
        return _message(error, plain)
    except MissingConfigException as error:
        return short_message(error)
    return _folder_problem(plain, cfg)


def _folder_problem(overrides: list[str], cfg: DictConfig) -> str | None:
    """An output folder that cannot be made: the logs' root, or a run or sweep folder given on
    the command line (made here as Hydra would make it a moment later)."""
    folders = {"paths.log_dir": str(cfg.paths.log_dir)}
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if key in FOLDER_KEYS and "${" not in value:
            folders[key] = value
    for key, folder in folders.items():
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            probe = Path(folder) / ".initbench-write-test"
            probe.touch()
            probe.unlink()
        except OSError as error:
            return f"{key}={folder}: cannot write there ({error.strerror or error})"
    return None


def _first_values(overrides: list[str]) -> list[str]:
    """The overrides with each swept key at its first value (``init=a,b`` -> ``init=a``)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    plain = []
    for override in parsed:
        if override.is_sweep_override():
            value = next(override.sweep_string_iterator())
            plain.append(f"{override.get_key_element()}={value}")
        else:
            plain.append(override.input_line)
    return plain


def _compose(overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose("config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def _message(error: ConfigCompositionException, overrides: list[str]) -> str:
    cause = error.__cause__
    if not (isinstance(cause, ConfigKeyError | ConfigAttributeError) and cause.full_key):
        return short_message(error)
    key = str(cause.full_key)
    parent, _, name = key.rpartition(".")
    typed = next((o for o in overrides if o.lstrip("+~").split("=", 1)[0] == key), key)
    rest = [o for o in overrides if o != typed]
    base = _compose(rest)
    node = OmegaConf.select(base, parent) if parent else base
    keys = [str(k) for k in node] if OmegaConf.is_dict(node) else []
    close = difflib.get_close_matches(name, keys, n=MAX_SUGGESTIONS, cutoff=0.5)
    prefix = f"{parent}." if parent else ""
    hint = f"did you mean {' or '.join(prefix + c for c in close)}? " if close else ""
    return f"{typed}: {key} is not a key of this config; {hint}(+{typed.lstrip('+')} adds it)"


def short_message(error: Exception) -> str:
    """Hydra's message up to its ``Config search path`` listing; for a misspelt choice, the
    closest of its options first."""
    message = str(error).split("\nConfig search path", 1)[0].strip()
    missing = re.search(r"Could not find '(.+)/([^'/]+)'", message)
    options = [line.strip() for line in message.splitlines() if line.startswith("\t")]
    if missing and options:
        group, choice = missing.groups()
        close = difflib.get_close_matches(choice, options, n=MAX_SUGGESTIONS, cutoff=0.5)
        if close:
            guesses = " or ".join(f"{group}={c}" for c in close)
            return f"{group}={choice}: no such choice; did you mean {guesses}?\n{message}"
    return message
