"""LSUV as the paper has it, the fastai variant that also centres, and no side effects."""

import pytest
import torch
from torch import nn

from inits import LSUV, buffers_restored, weight_targets
from inits.lsuv import _output_moments
from models import CNN, MLP, ResNet


@pytest.mark.slow
def test_lsuv_leaves_batchnorm_statistics_as_they_were() -> None:
    model = ResNet((1, 28, 28), 10, depth=8, norm="batchnorm")
    LSUV()(model, torch.randn(32, 1, 28, 28))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    for norm in norms:  # as PyTorch creates them: no batch seen yet
        assert norm.num_batches_tracked.item() == 0
        assert torch.all(norm.running_mean == 0) and torch.all(norm.running_var == 1)


def test_buffers_restored_even_when_the_block_fails() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    with pytest.raises(RuntimeError, match="midway"), buffers_restored(model):
        model(torch.randn(8, 4) + 3)
        raise RuntimeError("midway")
    assert model[1].num_batches_tracked.item() == 0 and torch.all(model[1].running_mean == 0)


def _models() -> list[nn.Module]:
    return [
        MLP((1, 28, 28), 10, depth=3, width=256),
        CNN((1, 28, 28), 10),
        # 10-15 s on 2 CPU cores: LSUV's per-layer loop forwards the whole net each time
        pytest.param(ResNet((1, 28, 28), 10, depth=8, norm="batchnorm"), marks=pytest.mark.slow),
    ]


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_lsuv_center_gives_every_layer_mean_0_and_variance_1(model: nn.Module) -> None:
    batch = torch.randn(64, 1, 28, 28) + 0.5  # inputs not centred: outputs have a mean
    LSUV(center=True, tolerance=1e-3)(model, batch)
    for target in weight_targets(model):  # measured again, after every layer is done
        mean, variance = _output_moments(model, batch, target)
        assert abs(mean) < 1e-3 and abs(variance - 1) < 1e-3, target.name


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_lsuv_without_center_leaves_the_bias(model: nn.Module) -> None:
    batch = torch.randn(64, 1, 28, 28) + 0.5
    LSUV(bias=0.1)(model, batch)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            assert torch.all(module.bias == 0.1)


def test_lsuv_measures_the_layer_output_before_an_inplace_relu() -> None:
    model, batch = MLP((1, 28, 28), 10, depth=2, width=256), torch.randn(64, 1, 28, 28)
    LSUV(tolerance=0.01)(model, batch)  # MLP's ReLU(inplace=True) follows each Linear
    first = model.layers[0][0](batch.flatten(1))
    assert first.var().item() == pytest.approx(1.0, abs=0.01)
