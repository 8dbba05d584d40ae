"""Is a difference between two inits real or noise? Intervals and tests over seeds.

A sweep cell is one init in one setting, its values one per seed. Each cell gets a Student-t
95 % confidence interval of its mean; each init is compared with the setting's best by Welch's
t-test (unequal variances), and the p-values of one setting are corrected for the number of
comparisons by Holm's step-down method (Holm 1979), which controls the family-wise error rate
without assuming independence. scipy gives the t distribution and Welch's test; Holm's
correction is five lines, not worth a statsmodels dependency.
"""

import math
import warnings
from dataclasses import dataclass
from statistics import fmean, stdev

from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values and its t confidence interval (``nan`` bounds below 2 values)."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Comparison:
    """An init against the best of its setting: the difference of means (in the values'
    unit), Welch's p-value, Holm-adjusted, and whether it is significant at ``ALPHA``."""

    init: str
    best: str
    difference: float
    p: float
    p_holm: float
    n: int
    n_best: int

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA

    def sentence(self, setting: str, unit: str = "pt") -> str:
        """``lsuv vs kaiming_normal on model=cnn: -0.4 pt, p = 0.31, not significant ...``."""
        if math.isnan(self.p_holm):
            verdict = "not testable (needs 2 runs on each side)"
        else:
            verdict = "significant" if self.significant else "not significant"
            verdict = f"p = {self.p_holm:.2g} (Holm), {verdict} at n = {self.n} vs {self.n_best}"
        return f"{self.init} vs {self.best} on {setting}: {self.difference:+.2f} {unit}, {verdict}"


def t_interval(values: list[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean +- t_{(1+c)/2, n-1} * s / sqrt(n)."""
    n = len(values)
    mean = fmean(values) if values else math.nan
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * stdev(values) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def rank(cells: dict[str, list[float]], eligible: set[str] | None = None) -> list[str]:
    """Inits by mean, best (highest) first: those ``eligible`` to be best first (all by
    default; the report leaves out a cell with diverged or failed runs, whose mean is its
    survivors'), then the others, then cells without values."""
    eligible = set(cells) if eligible is None else eligible

    def key(init: str) -> tuple:
        values = cells[init]
        return (not values, init not in eligible, -fmean(values) if values else 0.0)

    return sorted(cells, key=key)


def compare_to_best(
    cells: dict[str, list[float]], eligible: set[str] | None = None
) -> list[Comparison]:
    """Every init with values against the best one (``rank``'s first), Holm-adjusted."""
    ranked = [init for init in rank(cells, eligible) if cells[init]]
    if len(ranked) < 2:
        return []
    best, others = ranked[0], ranked[1:]
    raw = [welch_p(cells[init], cells[best]) for init in others]
    adjusted = holm(raw)
    return [
        Comparison(
            init,
            best,
            fmean(cells[init]) - fmean(cells[best]),
            p,
            p_holm,
            len(cells[init]),
            len(cells[best]),
        )
        for init, p, p_holm in zip(others, raw, adjusted)
    ]


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided Welch's t-test p-value; ``nan`` with fewer than 2 values on a side. Two
    constant samples (a dead init at chance level on every seed) differ surely (p = 0) unless
    their values are equal, where scipy would divide by zero."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if stdev(a) == 0 and stdev(b) == 0:
        return 1.0 if fmean(a) == fmean(b) else 0.0
    with warnings.catch_warnings():  # one constant sample: scipy warns of lost precision
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: the k-th smallest of m p-values times (m - k + 1), made
    monotone, capped at 1; ``nan`` stays ``nan`` and does not count."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for k, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * p))
        adjusted[i] = running
    return adjusted
