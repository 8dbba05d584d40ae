"""muP (models/parametrization.py): TP5 Table 3's learning rates and readout scale per tensor,
the refusals, and ``parametrization=mup`` through train.py."""

import math
from functools import partial

import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from torch import nn

from benchmarks.studies.signal_vs_depth import strategy
from inits import apply_init
from models import CNN, MLP, LSTMClassifier, ResNet
from models.parametrization import MuP, build_optimizer
from train import build, train

SHAPE = (1, 28, 28)


def _lrs(optimizer: torch.optim.Optimizer, key: str = "lr") -> dict[str, float]:
    return {g["name"]: g[key] for g in optimizer.param_groups}


def test_sgd_and_adam_learning_rates_follow_table_3() -> None:
    net = MLP(SHAPE, 10, depth=3, width=256)  # m = 256 / 64 = 4
    mup = MuP(base_width=64)
    sgd = build_optimizer(net, partial(torch.optim.SGD, lr=0.1, weight_decay=1e-3), mup)
    # SGD: lr x m_out / m_in (input and biases: fan_out, hidden: 1, readout: 1/fan_in)
    expected = {"input_and_biases": 0.4, "hidden": 0.1, "readout": 0.025, "readout_bias": 0.1}
    assert _lrs(sgd) == pytest.approx(expected)
    decay = _lrs(sgd, "weight_decay")  # lr x weight_decay stays the tuned 1e-4
    assert {k: decay[k] * v for k, v in _lrs(sgd).items()} == pytest.approx(
        dict.fromkeys(decay, 1e-4)
    )
    adam = build_optimizer(net, partial(torch.optim.AdamW, lr=1e-3), mup)
    # Adam: lr x 1 / m_in (input and biases: 1, hidden and readout: 1/fan_in)
    expected = {"input_and_biases": 1e-3, "hidden": 2.5e-4, "readout": 2.5e-4, "readout_bias": 1e-3}
    assert _lrs(adam) == pytest.approx(expected)


@pytest.mark.parametrize("norm", ["none", "layernorm"])
def test_every_parameter_is_in_the_group_of_its_role(norm: str) -> None:
    mlp = MLP(SHAPE, 10, depth=3, width=32, norm=norm)
    cnn = CNN(SHAPE, 10, channels=(8, 16), hidden=32, norm=norm)
    expected = {
        mlp: {"layers.0.0.weight": "input_and_biases", "layers.2.0.weight": "hidden"},
        cnn: {"features.0.weight": "input_and_biases", "features.4.weight": "hidden"},
    }
    expected[cnn]["fc.1.weight"] = "hidden"
    for net, roles in expected.items():
        names = {p: n for n, p in net.named_parameters()}
        listed = [(names[p], g.name) for g in MuP(16).param_groups(net) for p in g.params]
        assert sorted(n for n, _ in listed) == sorted(names.values())  # each exactly once
        groups = dict(listed)
        roles |= {"head.weight": "readout", "head.bias": "readout_bias"}
        assert {k: groups[k] for k in roles} == roles
        others = set(groups) - set(roles) - {n for n in groups if n.endswith("weight")}
        assert {groups[n] for n in others} == {"input_and_biases"}  # biases, norms' shifts


def test_readout_is_scaled_by_width_and_mup_is_standard_at_the_base_width() -> None:
    for width, base in ((1024, 64), (64, 64)):
        torch.manual_seed(0)
        net = MLP(SHAPE, 10, depth=2, width=width)
        apply_init(strategy("kaiming_normal"), net, torch.randn(4, *SHAPE))
        before = {n: p.clone() for n, p in net.named_parameters()}
        MuP(base, readout_zero_init=False).rescale_init(net)
        for name, param in net.named_parameters():
            factor = math.sqrt(base / width) if name == "head.weight" else 1.0
            torch.testing.assert_close(param, before[name] * factor)
    MuP(64).rescale_init(net)  # zero by default (TP5 App. D.2)
    assert net.head.weight.count_nonzero() == 0
    sgd = build_optimizer(net, partial(torch.optim.SGD, lr=0.05), MuP(64))
    assert set(_lrs(sgd).values()) == {0.05}  # m = 1: every group at the tuned lr


@pytest.mark.parametrize(
    "net",
    [ResNet(SHAPE, 10, depth=8), LSTMClassifier(SHAPE, 10)],
    ids=["resnet", "lstm"],
)
def test_models_without_a_rule_are_refused(net: nn.Module) -> None:
    with pytest.raises(ValueError, match="implemented for model=mlp and model=cnn, not for"):
        build_optimizer(net, partial(torch.optim.SGD, lr=0.1), MuP())


def test_optimizers_without_a_rule_are_refused() -> None:
    net = MLP(SHAPE, 10, width=32)
    with pytest.raises(ValueError, match="rules for optimizer=sgd, adam and adamw .* RMSprop"):
        build_optimizer(net, partial(torch.optim.RMSprop, lr=0.1), MuP())
    assert len(build_optimizer(net, partial(torch.optim.RMSprop, lr=0.1)).param_groups) == 1


def test_train_with_mup_scales_the_readout_and_the_groups_learning_rates(make_cfg) -> None:
    overrides = ("model.width=64", "scheduler=constant")
    standard = build(make_cfg(*overrides))[1].net.head.weight
    mup = ("parametrization=mup", "parametrization.base_width=16", *overrides)
    scaled = build(make_cfg(*mup, "parametrization.readout_zero_init=false"))[1].net.head.weight
    torch.testing.assert_close(scaled, standard / 2)  # sqrt(16 / 64)
    cfg = make_cfg(*mup)
    trainer, module, datamodule = build(cfg)
    assert module.net.head.weight.count_nonzero() == 0
    trainer.fit(module, datamodule=datamodule)
    # m = 4, SGD lr 0.05: input and biases x4, hidden x1, readout /4, readout bias x1
    expected = {"input_and_biases": 0.2, "hidden": 0.05, "readout": 0.0125, "readout_bias": 0.05}
    assert _lrs(trainer.optimizers[0]) == pytest.approx(expected)
    (monitor,) = [c for c in trainer.callbacks if isinstance(c, LearningRateMonitor)]
    assert set(monitor.lrs) == {f"train/lr/{name}" for name in expected}  # one curve each
    record = train(cfg)
    assert record.status == "finished" and record.choices["parametrization"] == "mup"


def test_mup_on_a_resnet_fails_before_the_data_loads(make_cfg) -> None:
    cfg = make_cfg("parametrization=mup", "model=resnet", "data.root=/nonexistent/initbench")
    with pytest.raises(ValueError, match="implemented for model=mlp and model=cnn, not for ResNet"):
        train(cfg)
