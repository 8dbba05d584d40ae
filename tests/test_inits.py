"""The variance-scaling family matches its formulas and torch.nn.init, with per-layer rules; the
gain it derives from the model's activation matches calculate_gain or the second-moment formula."""

import logging
import math

import pytest
import torch
from scipy import integrate
from torch import nn

from callbacks.watched import watched_modules
from inits import (
    Default,
    Normal,
    VarianceScaling,
    activation_gain,
    fans,
    model_gain,
    variance_scaling_,
    weight_targets,
)
from models import CNN, MLP, LSTMClassifier, ResNet
from tests.support import reference_gain

SHAPES = {"linear": (256, 384), "conv": (64, 32, 3, 3)}
RELU, TANH = nn.init.calculate_gain("relu"), nn.init.calculate_gain("tanh")
TORCH_EQUIVALENTS = [
    # (our mode, distribution, gain) == torch function with the same seed
    ("fan_in", "normal", RELU, lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu")),
    ("fan_out", "normal", RELU, lambda t: nn.init.kaiming_normal_(t, mode="fan_out")),
    ("fan_in", "uniform", RELU, lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu")),
    ("fan_avg", "normal", 1.0, nn.init.xavier_normal_),
    ("fan_avg", "uniform", TANH, lambda t: nn.init.xavier_uniform_(t, gain=TANH)),
]


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize(("mode", "dist", "gain", "reference"), TORCH_EQUIVALENTS)
def test_same_seed_same_numbers_as_torch(shape, mode, dist, gain, reference) -> None:
    ours, theirs = torch.empty(shape), torch.empty(shape)
    torch.manual_seed(7)
    variance_scaling_(ours, gain, mode, dist)
    torch.manual_seed(7)
    reference(theirs)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("dist", ["normal", "truncated_normal", "uniform"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
def test_std_matches_the_formula(mode: str, dist: str) -> None:
    w = variance_scaling_(torch.empty(512, 128, 3, 3), 1.7, mode, dist)
    fan_in, fan_out = 128 * 9, 512 * 9
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    expected = 1.7 / math.sqrt(fan)
    assert abs(w.mean()) < 3 * expected / math.sqrt(w.numel())
    assert w.std().item() == pytest.approx(expected, rel=0.01)
    bound = {"uniform": math.sqrt(3), "truncated_normal": 2 / 0.8796256610342398}.get(dist)
    if bound:
        assert w.abs().max() <= bound * expected * (1 + 1e-6)


def test_fans_follow_torch() -> None:
    for shape in SHAPES.values():
        assert fans(torch.empty(shape)) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="unknown distribution 'gaussian'; choose one of: normal"):
        VarianceScaling(distribution="gaussian")


@pytest.mark.parametrize("activation", ["relu", "tanh", "linear", "selu", "leaky_relu", "gelu"])
def test_gain_follows_the_models_activation(activation: str) -> None:
    # the models' leaky_relu has torch's default slope, 0.01
    gain = reference_gain(activation, 0.01 if activation == "leaky_relu" else None)
    rel = 1e-5 if activation == "gelu" else 1e-12  # GELU's E[f(z)^2] is kept to 5 digits
    assert activation_gain(activation) == pytest.approx(gain, rel=rel)
    model = MLP((1, 32, 32), 10, depth=2, width=1024, activation=activation)
    VarianceScaling(mode="fan_in")(model)
    assert model.layers[1][0].weight.std().item() == pytest.approx(gain / 32, rel=0.02)
    VarianceScaling(mode="fan_in", gain=1.0)(model)  # an explicit gain overrides
    assert model.layers[1][0].weight.std().item() == pytest.approx(1 / 32, rel=0.02)


def test_softsign_gain_is_one_over_its_second_moment() -> None:
    def density(z: float) -> float:
        return (z / (1 + z)) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    second_moment = 2 * integrate.quad(density, 0, math.inf, epsabs=1e-12)[0]
    torch.manual_seed(0)
    sampled = nn.functional.softsign(torch.randn(4_000_000, dtype=torch.float64)).square().mean()
    assert sampled.item() == pytest.approx(second_moment, rel=2e-3)
    gain, label = model_gain(MLP((1, 28, 28), 10, activation="softsign"), "test")
    assert label == "Softsign"
    assert gain == pytest.approx(1 / math.sqrt(second_moment), rel=1e-4)
    assert gain == pytest.approx(2.3375, abs=1e-3)


def test_softsign_gain_keeps_unit_preactivations_through_depth() -> None:
    torch.manual_seed(0)
    model = MLP((512,), 10, depth=30, width=512, activation="softsign")
    VarianceScaling()(model)  # gain from the Softsign modules
    x = torch.randn(512, 512) / reference_gain("softsign")  # second moment E[softsign(z)^2]
    for layer in model.layers[:-1]:
        x = layer[0](x)  # the Linear: the pre-activation, unit variance at every depth
        assert x.std().item() == pytest.approx(1.0, abs=0.15)
        x = layer[2](layer[1](x))


def test_softsign_saturation_is_watched_like_tanh() -> None:
    model = MLP((1, 28, 28), 10, activation="softsign")
    bounded = {type(w.module): w.bounded for w in watched_modules(model)}
    assert bounded[nn.Softsign] == "tanh"


@pytest.mark.parametrize("norm", ["none", "layernorm"])
def test_lstm_fans_are_per_gate_and_forget_bias_is_exact(norm: str) -> None:
    model = LSTMClassifier((1, 28, 28), 10, hidden_size=256, num_layers=2, norm=norm)
    VarianceScaling(mode="fan_avg", gain=1.0, forget_bias=2.0)(model)
    targets = [t for t in weight_targets(model) if "weight_" in t.name]
    assert len(targets) == 2 * 2 * 4  # layers x (ih, hh) x gates
    for target in targets:
        fan_in = target.tensor.shape[1]
        assert target.tensor.shape[0] == 256  # one gate, not the 4H stack
        expected = math.sqrt(2 / (fan_in + 256))
        assert target.tensor.std().item() == pytest.approx(expected, rel=0.03), target.name
    cells = [model.lstm] if norm == "none" else list(model.cells)
    for cell in cells:
        for suffix in [f"_l{k}" for k in range(2)] if norm == "none" else [""]:
            total = getattr(cell, f"bias_ih{suffix}") + getattr(cell, f"bias_hh{suffix}")
            expected = torch.zeros(4 * 256)
            expected[256:512] = 2.0
            torch.testing.assert_close(total.detach(), expected)


def test_biases_and_norms_follow_the_shared_rules() -> None:
    model = ResNet((3, 32, 32), 10, depth=8, norm="layernorm")
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-3, 3)
    VarianceScaling(bias=0.1)(model)
    for module in model.modules():
        if isinstance(module, nn.GroupNorm):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            assert torch.all(module.bias == 0.1)


def test_every_weight_of_every_model_is_rewritten() -> None:
    for model in (
        MLP((1, 28, 28), 10),
        CNN((3, 32, 32), 10),
        ResNet((1, 28, 28), 10),
        LSTMClassifier((1, 28, 28), 10, norm="layernorm"),
    ):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        VarianceScaling(bias=None, forget_bias=None)(model)
        for name, param in model.named_parameters():
            if "weight" in name and "norm" not in name:
                assert not torch.equal(before[name], param), name


def test_default_leaves_pytorch_defaults() -> None:
    model = CNN((1, 28, 28), 10)
    before = [p.detach().clone() for p in model.parameters()]
    Default()(model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_unknown_layer_is_named() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Embedding(10, 4))
    with pytest.raises(TypeError, match="layer '1' \\(Embedding\\).*supported layers: Linear"):
        VarianceScaling()(model)


def _user_net(*activations: nn.Module) -> nn.Sequential:
    """A user's own model (``model._target_=mypkg.MyNet``): no ``activation`` attribute."""
    layers: list[nn.Module] = [nn.Linear(1024, 1024)]
    for activation in activations:
        layers += [activation, nn.Linear(1024, 1024)]
    return nn.Sequential(*layers)


@pytest.mark.parametrize(
    ("activation", "gain", "label"),
    [
        (nn.ReLU(), reference_gain("relu"), "ReLU"),
        (nn.LeakyReLU(0.2), reference_gain("leaky_relu", 0.2), "LeakyReLU(0.2)"),
        (nn.Tanh(), reference_gain("tanh"), "Tanh"),
        (nn.GELU(), reference_gain("gelu"), "GELU"),
    ],
)
def test_gain_comes_from_the_activation_modules(activation, gain, label, caplog) -> None:
    model = _user_net(activation, activation)
    with caplog.at_level(logging.INFO):
        VarianceScaling()(model)
    assert model[2].weight.std().item() == pytest.approx(gain / 32, rel=0.02)
    assert f"gain {gain:.4g} ({label})" in caplog.text


def test_mixed_activations_need_an_explicit_gain() -> None:
    model = _user_net(nn.ReLU(), nn.Tanh())
    with pytest.raises(ValueError, match=r"mixed activations \(ReLU, Tanh\).*init.gain="):
        VarianceScaling()(model)
    VarianceScaling(gain=1.3)(model)
    assert model[2].weight.std().item() == pytest.approx(1.3 / 32, rel=0.02)
    Normal(std=0.1)(model)  # a fixed-scale strategy has no gain to derive


def test_unknown_activation_module_needs_an_explicit_gain() -> None:
    with pytest.raises(ValueError, match="no gain is known for SiLU.*init.gain="):
        VarianceScaling()(_user_net(nn.SiLU()))


def test_no_activation_module_warns_and_says_the_gain(caplog) -> None:
    class Functional(nn.Module):  # relu as a function: nothing for the init to see
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(1024, 1024), nn.Linear(1024, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(nn.functional.relu(self.fc1(x)))

    model = Functional()
    with caplog.at_level(logging.INFO):
        VarianceScaling()(model)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no activation module" in w and "gain 1 (linear)" in w for w in warnings)
    assert model.fc1.weight.std().item() == pytest.approx(1 / 32, rel=0.02)


def test_models_state_their_activation_through_their_modules(caplog) -> None:
    for model in (MLP((1, 8, 8), 10, activation="linear"), CNN((1, 8, 8), 10, channels=(4,))):
        assert not hasattr(model, "activation")  # the gain cannot come from a bare attribute
    with caplog.at_level(logging.INFO):
        VarianceScaling()(MLP((1, 8, 8), 10, activation="linear", norm="layernorm"))
        VarianceScaling()(LSTMClassifier((1, 8, 8), 10))
    lstm = f"gain {reference_gain('tanh'):.4g} (LSTM)"  # the LSTM's tanh: 1.667
    assert "gain 1 (linear)" in caplog.text and lstm in caplog.text
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
