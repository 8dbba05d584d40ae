"""The vanilla RNN and the GRU under the shared per-gate rules, and IRNN (Le et al. 2015)."""

import logging
import math

import pytest
import torch
from torch import nn

from callbacks.watched import watched_modules
from inits import IRNN, LSUV, NotApplicable, Orthogonal, VarianceScaling, weight_targets
from inits.lsuv import _layer_sequences
from models import MLP, GRUClassifier, LSTMClassifier, RNNClassifier
from tests.support import reference_gain
from train import train


def test_gru_fans_and_orthogonality_are_per_gate() -> None:
    model = GRUClassifier((1, 28, 28), 10, hidden_size=256, num_layers=2)
    VarianceScaling(mode="fan_avg", gain=1.0)(model)
    targets = [t for t in weight_targets(model) if "weight_" in t.name]
    assert len(targets) == 2 * 2 * 3  # layers x (ih, hh) x gates (r, z, n)
    assert [t.name for t in targets[:3]] == [
        f"rnn.weight_ih_l0[{g}]" for g in ("reset", "update", "new")
    ]
    for target in targets:
        assert target.tensor.shape[0] == 256  # one gate, not the 3H stack
        expected = math.sqrt(2 / (target.tensor.shape[1] + 256))
        assert target.tensor.std().item() == pytest.approx(expected, rel=0.03), target.name
    Orthogonal(gain=1.0)(model)
    for target in weight_targets(model):
        w = target.tensor.detach()
        small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(small, torch.eye(small.shape[0]), atol=1e-4, rtol=0)
    stack = model.rnn.weight_hh_l0.detach()  # the 768 x 256 stack is not one orthogonal matrix: 3 I
    torch.testing.assert_close(stack.T @ stack, 3 * torch.eye(256), atol=1e-4, rtol=0)


def test_gru_biases_take_bias_and_ignore_forget_bias() -> None:
    model = GRUClassifier((1, 28, 28), 10, num_layers=2)
    VarianceScaling(bias=0.1, forget_bias=2.0)(model)
    biases = [p for n, p in model.rnn.named_parameters() if n.startswith("bias_")]
    assert len(biases) == 4  # b_ih and b_hh of two layers: b_in and b_hn both set
    assert all(torch.all(b == 0.1) for b in biases)


def test_rnn_weights_are_single_matrices_and_recurrent_orthogonal_applies() -> None:
    model = RNNClassifier((1, 28, 28), 10, hidden_size=256, activation="relu")
    VarianceScaling(recurrent_orthogonal=True)(model)
    targets = {t.name: t for t in weight_targets(model)}
    assert list(targets) == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"]
    assert targets["rnn.weight_hh_l0"].recurrent and not targets["rnn.weight_ih_l0"].recurrent
    w = model.rnn.weight_hh_l0
    torch.testing.assert_close(w @ w.T, torch.eye(256), atol=1e-4, rtol=0)
    std = model.rnn.weight_ih_l0.std().item()  # kaiming with ReLU's gain, read from nn.RNN
    assert std == pytest.approx(reference_gain("relu") / math.sqrt(28), rel=0.03)
    assert torch.all(model.rnn.bias_ih_l0 == 0) and torch.all(model.rnn.bias_hh_l0 == 0)


@pytest.mark.parametrize(
    ("model", "gain", "label"),
    [
        (RNNClassifier((1, 28, 28), 10, hidden_size=512), reference_gain("tanh"), "tanh"),
        (
            RNNClassifier((1, 28, 28), 10, hidden_size=512, activation="relu"),
            reference_gain("relu"),
            "relu",
        ),
        (
            RNNClassifier((1, 28, 28), 10, hidden_size=512, activation="relu", norm="layernorm"),
            reference_gain("relu"),
            "relu",
        ),
        (GRUClassifier((1, 28, 28), 10, hidden_size=512), reference_gain("tanh"), "GRU"),
    ],
    ids=["rnn-tanh", "rnn-relu", "rnn-relu-layernorm", "gru"],
)
def test_gain_comes_from_the_recurrent_layer(model, gain: float, label: str, caplog) -> None:
    with caplog.at_level(logging.INFO):
        VarianceScaling()(model)
    assert f"gain {gain:.4g} ({label})" in caplog.text
    w = next(t.tensor for t in weight_targets(model) if not t.recurrent)
    assert w.std().item() == pytest.approx(gain / math.sqrt(28), rel=0.03)


@pytest.mark.parametrize("norm", ["none", "layernorm"])
def test_irnn_identity_recurrent_small_gaussian_inputs_zero_biases(norm: str) -> None:
    model = RNNClassifier((1, 28, 28), 10, hidden_size=256, num_layers=2, activation="relu")
    if norm == "layernorm":
        model = RNNClassifier((1, 28, 28), 10, 256, 2, activation="relu", norm=norm)
    IRNN(scale=0.5, fallback=Orthogonal(gain=1.0))(model)
    for target in weight_targets(model):
        if target.recurrent:
            torch.testing.assert_close(target.tensor, 0.5 * torch.eye(256), rtol=0, atol=0)
        elif target.module is not model.head:
            assert target.tensor.std().item() == pytest.approx(0.001, rel=0.05), target.name
            assert abs(target.tensor.mean().item()) < 1e-4
    biases = [p for n, p in model.rnn.named_parameters() if "bias" in n and "norm" not in n]
    assert all(torch.all(b == 0) for b in biases)
    head = model.head.weight  # the fallback's
    torch.testing.assert_close(head @ head.T, torch.eye(10), atol=1e-4, rtol=0)


def test_irnn_copies_the_state_forward() -> None:
    # With W_hh = I, zero biases and a nonnegative state, relu(h + 0) = h: the state is kept.
    model = RNNClassifier((1, 4, 4), 10, hidden_size=8, activation="relu")
    IRNN(fallback=Orthogonal())(model)
    h0 = torch.rand(1, 1, 8)
    _, h = model.rnn(torch.zeros(1, 20, 4), h0)
    torch.testing.assert_close(h, h0)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (MLP((1, 28, 28), 10), "MLP has none: use it with model=rnn model.activation=relu"),
        (GRUClassifier((1, 28, 28), 10), "GRUClassifier has none: use it with model=rnn"),
        (LSTMClassifier((1, 28, 28), 10), "LSTMClassifier has none"),
        (RNNClassifier((1, 28, 28), 10), "this one uses tanh: use it with model=rnn model.act"),
    ],
    ids=["mlp", "gru", "lstm", "rnn-tanh"],
)
def test_irnn_refuses_what_is_not_a_relu_rnn(model: nn.Module, message: str) -> None:
    with pytest.raises(NotApplicable, match=message):
        IRNN(fallback=Orthogonal())(model)


def test_irnn_without_fallback_names_the_classifier() -> None:
    with pytest.raises(NotApplicable, match="'head.weight'.*not for a Linear"):
        IRNN()(RNNClassifier((1, 28, 28), 10, activation="relu"))


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
def test_lsuv_runs_each_layer_alone_exactly_as_the_stack_does(kind: type[nn.RNNBase]) -> None:
    rnn, x = kind(28, 16, num_layers=3, batch_first=True), torch.randn(4, 28, 28)
    layers = _layer_sequences(rnn, x)
    assert len(layers) == 3 and layers[0][0] is x
    torch.testing.assert_close(layers[1][0], layers[0][1])
    torch.testing.assert_close(layers[-1][1], rnn(x)[0])


def test_lsuv_reaches_unit_variance_on_a_relu_rnn() -> None:
    model = RNNClassifier((1, 28, 28), 10, num_layers=2, activation="relu")
    strategy, batch = LSUV(tolerance=0.05), torch.randn(64, 1, 28, 28)
    strategy(model, batch)
    assert [r.name for r in strategy.report] == [t.name for t in weight_targets(model)]
    assert all(abs(r.variance - 1) < 0.05 for r in strategy.report)


@pytest.mark.parametrize(
    "model",
    [
        RNNClassifier((1, 28, 28), 10, num_layers=2),
        RNNClassifier((1, 28, 28), 10, num_layers=2, norm="layernorm"),
        GRUClassifier((1, 28, 28), 10),
    ],
    ids=["rnn", "rnn-layernorm", "gru"],
)
def test_statistics_watch_the_recurrent_layers_with_units_last(model: nn.Module) -> None:
    watched = watched_modules(model)
    assert {w.unit_dim for w in watched} == {-1}
    recurrent = [w for w in watched if isinstance(w.module, (nn.RNNBase, nn.RNNCellBase))]
    assert len(recurrent) == (1 if isinstance(model.rnn, nn.RNNBase) else 2)
    assert all(w.kind == "layer output" for w in recurrent)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GRUClassifier((1, 28, 28), 10, norm="layernorm"), "norm for the GRU 'layernorm'"),
        (lambda: RNNClassifier((1, 28, 28), 10, norm="batchnorm"), "choose one of: none, layer"),
        (lambda: RNNClassifier((1, 28, 28), 10, activation="gelu"), "choose one of: tanh, relu"),
        (lambda: GRUClassifier((1, 28, 28), 10, activation="relu"), "choose one of: tanh"),
        (lambda: RNNClassifier((1, 28, 28), 10, hidden_size=0), "model.hidden_size and model"),
    ],
    ids=["gru-layernorm", "rnn-batchnorm", "rnn-gelu", "gru-relu", "rnn-size-0"],
)
def test_bad_recurrent_settings_are_named(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=rnn", "model.activation=relu", "init=irnn"],  # the fast core's recurrent run
        *(
            pytest.param(overrides, marks=pytest.mark.slow)
            for overrides in (
                ["model=rnn", "model.norm=layernorm", "init=lsuv"],
                ["model=gru", "init=orthogonal"],
                ["model=gru", "init=xavier_normal", "+init.recurrent_orthogonal=true"],
            )
        ),
    ],
    ids=lambda o: " ".join(o),
)
def test_recurrent_models_train_end_to_end(make_cfg, overrides: list[str]) -> None:
    record = train(make_cfg(*overrides))
    assert record.status == "finished" and math.isfinite(record.metrics["train/loss_epoch"])


def test_irnn_on_another_model_stops_the_run_by_name(make_cfg) -> None:
    with pytest.raises(NotApplicable, match="use it with model=rnn model.activation=relu"):
        train(make_cfg("model=gru", "init=irnn"))
