"""The coordinate check (tools/coord_check.py): its slopes and verdicts, and the claim's
direction on random inputs. Its --quick run on tiny data is in tests/test_benchmarks.py."""

from functools import partial

import pytest
import torch

from inits import apply_init
from models import MLP
from models.parametrization import MuP, Standard
from tools.coord_check import KAIMING, TOLERANCE, coordinates, slope, verdicts

WIDTHS = [64, 128, 256, 512]


def _curves(values: dict[int, list[float]]) -> dict[tuple, dict[int, list[float]]]:
    """One layer's checked curves: |x_0| = 1 at init, then ``values`` at steps 1 and 2."""
    key = ("mlp", "sgd", "mup", "readout")
    init = {w: [1.0, 1.0] for w in values}
    return {(*key, 0): init, (*key, 1): values, (*key, 2): values}


@pytest.mark.parametrize(
    ("values", "passes"),
    [
        ({w: [0.5, 0.5 * 1.01] for w in WIDTHS}, True),  # flat
        ({w: [w**0.1, w**0.1] for w in WIDTHS}, True),  # within the tolerance
        ({w: [w**0.3, w**0.3] for w in WIDTHS}, False),  # grows
        ({w: [w**-0.5, w**-0.5] for w in WIDTHS}, False),  # vanishes
        ({w: [0.0, 0.0] for w in WIDTHS}, True),  # no change at any width (zero readout)
        ({64: [1.0, 1.0], 128: [1.0, 1.0], 256: [1.0, 1.0], 512: [float("inf")] * 2}, False),
    ],
    ids=["flat", "slope 0.1", "slope 0.3", "slope -0.5", "zero", "blow-up"],
)
def test_verdict_is_pass_within_the_tolerance(values: dict, passes: bool) -> None:
    (row,) = verdicts(_curves(values), _curves(values))
    assert row["_pass"] is passes
    assert row["verdict"].startswith("pass" if passes else "FAIL")


def test_slope_is_the_log_log_exponent() -> None:
    assert slope(WIDTHS, [3 * w**0.5 for w in WIDTHS]) == pytest.approx(0.5)
    assert slope(WIDTHS, [1.0, 2.0, 0.0, 1.0]) == float("inf")  # dead at one width
    assert 0 < TOLERANCE < 0.5  # between flat and SP's sqrt(width) growth


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_readout_change_grows_with_width_under_sp_and_not_under_mup(optimizer: str) -> None:
    factory = {
        "sgd": partial(torch.optim.SGD, lr=0.05, momentum=0.9),
        "adam": partial(torch.optim.Adam, lr=1e-3),
    }[optimizer]
    gen = torch.Generator().manual_seed(0)
    probe = torch.randn(64, 1, 28, 28, generator=gen)
    batches = [
        (torch.randn(64, 1, 28, 28, generator=gen), torch.randint(0, 10, (64,))) for _ in range(2)
    ]
    change = {}  # (parametrization, width) -> mean |logits_2 - logits_0|
    for name, rule in (("standard", Standard()), ("mup", MuP(base_width=128))):
        for width in (128, 1024):
            torch.manual_seed(0)
            net = MLP((1, 28, 28), 10, depth=2, width=width)
            apply_init(KAIMING, net, probe)
            change[name, width] = coordinates(net, rule, factory, probe, batches)[2][-1][1]
    growth = {name: change[name, 1024] / change[name, 128] for name in ("standard", "mup")}
    assert growth["standard"] > 2  # 8x the width: SP's logit change 2.8x (SGD), 7x (Adam)
    assert 0.5 < growth["mup"] < 1.5  # muP's 0.7-0.8x
