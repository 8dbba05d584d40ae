"""A command line's overrides, composed once before Hydra runs them, so that a misspelt key or
choice is one short message: the key with the closest valid names (``difflib``), or Hydra's
list of options without its search-path listing; and an output folder that cannot be written
is named before anything starts. Hydra's own message for a misspelt key names no alternative,
and in a sweep its list of options ends 40 lines of search paths.

The pre-flight only improves messages: a command line it cannot judge (other Hydra flags,
globs, interpolations it cannot resolve yet) is left to Hydra, which reports it as before.
"""

import difflib
import os
import re
import tempfile
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from runs.compose import compose_config

MULTIRUN_FLAGS = ("-m", "--multirun")
MAX_SUGGESTIONS = 3


def preflight(argv: list[str]) -> str | None:
    """Why the command line's overrides cannot run, in a few lines; None when they can, or
    when it is Hydra's to judge (other flags: ``--cfg``, ``--help``...; a DDP rank that
    Lightning started: its first process checked the same command line)."""
    if os.environ.get("LOCAL_RANK") or any(
        a.startswith("-") and a not in MULTIRUN_FLAGS for a in argv
    ):
        return None
    multirun = any(a in MULTIRUN_FLAGS for a in argv)
    try:
        plain = _first_values([a for a in argv if a not in MULTIRUN_FLAGS])
    except HydraException:  # a syntax error or a glob: Hydra's own message and sweeper
        return None
    try:
        cfg = compose_config(plain)
    except ConfigCompositionException as error:
        return _message(error, plain)
    except MissingConfigException as error:
        return short_message(error)
    return _folder_problem(plain, cfg, multirun)


def _first_values(overrides: list[str]) -> list[str]:
    """The overrides with each swept key at its first value (``init=a,b`` -> ``init=a``)."""
    plain = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            value = next(override.sweep_string_iterator())
            plain.append(f"{override.get_key_element()}={value}")
        else:
            plain.append(override.input_line)
    return plain


def _message(error: ConfigCompositionException, overrides: list[str]) -> str:
    """A misspelt key with the closest keys of its node, or Hydra's short message."""
    cause = error.__cause__
    if not (isinstance(cause, ConfigKeyError | ConfigAttributeError) and cause.full_key):
        return short_message(error)
    key = str(cause.full_key)
    typed = next((o for o in overrides if o.lstrip("+~").split("=", 1)[0] == key), key)
    close = _closest_keys(key, [o for o in overrides if o != typed])
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return f"{typed}: {key} is not a key of this config; {hint}(+{typed.lstrip('+')} adds it)"


def _closest_keys(key: str, overrides: list[str]) -> list[str]:
    """The keys next to ``key`` in the config of the other overrides that look like it (none
    when those do not compose either: a second misspelt key)."""
    parent, _, name = key.rpartition(".")
    try:
        base = compose_config(overrides)
    except HydraException:
        return []
    node = OmegaConf.select(base, parent) if parent else base
    keys = [str(k) for k in node] if OmegaConf.is_dict(node) else []
    close = difflib.get_close_matches(name, keys, n=MAX_SUGGESTIONS, cutoff=0.5)
    return [f"{parent}.{c}" if parent else c for c in close]


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


def _folder_problem(overrides: list[str], cfg: DictConfig, multirun: bool) -> str | None:
    """The folder this command writes into (a sweep's or a run's, as typed, else the logs'
    root) when it cannot be written: its nearest existing parent must take a new file."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    typed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)}
    if isinstance(typed.get(key), str) and "${" not in typed[key]:
        folder = typed[key]
    else:
        try:
            key, folder = "paths.log_dir", str(cfg.paths.log_dir)
        except OmegaConfBaseException:  # it interpolates Hydra's runtime: Hydra will tell
            return None
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        with tempfile.TemporaryFile(dir=existing):
            return None
    except OSError as error:
        return f"{key}={folder}: cannot write there ({error.strerror or error})"
