"""The population's logger: each member's metrics to that member's own loggers."""

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from lightning.pytorch.loggers import Logger

from population.member import Member

V = TypeVar("V")


def member_key(index: int, key: str) -> str:
    """How the population logs member ``index``'s metric ``key``: ``3/val/acc``."""
    return f"{index}/{key}"


def split_key(key: str) -> tuple[int, str] | None:
    """``(index, key)`` of a key ``member_key`` made; None for any other key."""
    head, _, rest = key.partition("/")
    return (int(head), rest) if head.isdigit() and rest else None


def member_metrics(metrics: Mapping[str, V], index: int) -> dict[str, V]:
    """Member ``index``'s entries of ``metrics`` (``3/val/acc``), under its own names
    (``val/acc``): what its single run's trainer would hold."""
    parsed = ((split_key(key), value) for key, value in metrics.items())
    return {key[1]: value for key, value in parsed if key is not None and key[0] == index}


class MemberLoggers(Logger):
    """Routes ``K/metric`` to member K's loggers as ``metric``, with Lightning's ``epoch``
    value as a single run gets it (with every call that logs it something). Other keys (the
    population's progress-bar summaries) go nowhere. Each member's folder thus holds the events
    its single run would write."""

    def __init__(self, members: Sequence[Member]) -> None:
        super().__init__()
        self.members = list(members)

    @property
    def name(self) -> str:
        return "population"

    @property
    def version(self) -> str:
        return ""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        routed: dict[int, dict[str, float]] = {}
        for key, value in metrics.items():
            parsed = split_key(key)
            if parsed is not None:
                routed.setdefault(parsed[0], {})[parsed[1]] = value
        for index, values in routed.items():
            if "epoch" in metrics:
                values["epoch"] = metrics["epoch"]
            for logger in self.members[index].loggers:
                logger.log_metrics(values, step)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Each member writes its own HParams row when it ends (``population.run``)."""

    def save(self) -> None:
        for member in self.members:
            for logger in member.loggers:
                logger.save()

    def finalize(self, status: str) -> None:
        for member in self.members:
            for logger in member.loggers:
                logger.finalize(status)
