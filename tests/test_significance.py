"""Intervals and tests of the sweep report against textbook values."""

import math

import pytest

from sweeps.significance import compare_to_best, holm, rank, t_interval, welch_p


def test_t_interval_of_three_values() -> None:
    interval = t_interval([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert (interval.mean, interval.n) == (2.0, 3)
    assert interval.low == pytest.approx(2 - half) and interval.high == pytest.approx(2 + half)
    assert math.isnan(t_interval([5.0]).low)


def test_welch_matches_the_textbook_value() -> None:
    # t = -2.191, df = 6 (equal variances 1.667): two-sided p = 0.0710
    assert welch_p([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0]) == pytest.approx(0.0710, abs=1e-3)
    assert welch_p([11.35] * 3, [11.35] * 3) == 1.0 and welch_p([11.35] * 3, [97.0] * 3) == 0.0
    assert math.isnan(welch_p([1.0], [2.0, 3.0]))


def test_holm_step_down() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, math.nan]) == [0.5, pytest.approx(math.nan, nan_ok=True)]


def test_every_init_is_compared_with_the_best() -> None:
    cells = {
        "xavier": [93.0, 93.2, 92.9],
        "kaiming": [94.0, 94.1, 93.9],
        "zeros": [11.35, 11.35, 11.35],
        "missing": [],
    }
    assert rank(cells) == ["kaiming", "xavier", "zeros", "missing"]
    comparisons = {c.init: c for c in compare_to_best(cells)}
    assert set(comparisons) == {"xavier", "zeros"}
    assert comparisons["xavier"].difference == pytest.approx(-0.9667, abs=1e-3)
    assert comparisons["zeros"].significant and comparisons["xavier"].significant
    sentence = comparisons["xavier"].sentence("model=mlp")
    assert sentence.startswith("xavier vs kaiming on model=mlp: -0.97 pt, p = ")
    assert sentence.endswith("significant at n = 3 vs 3")


def test_one_seed_is_not_testable() -> None:
    (comparison,) = compare_to_best({"a": [90.0], "b": [91.0]})
    assert not comparison.significant
    assert comparison.sentence("all runs").endswith("not testable (needs 2 runs on each side)")


def test_a_cell_with_unfinished_runs_cannot_be_best() -> None:
    """One surviving seed of three must not make an init that mostly diverged the best."""
    cells = {"survivor": [97.0], "steady": [95.0, 95.2, 94.9]}
    assert rank(cells) == ["survivor", "steady"]
    assert rank(cells, eligible={"steady"}) == ["steady", "survivor"]
    (comparison,) = compare_to_best(cells, eligible={"steady"})
    assert (comparison.init, comparison.best) == ("survivor", "steady")
