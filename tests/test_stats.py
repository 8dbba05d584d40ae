"""Per-layer statistics, through the real config on tiny data."""

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from callbacks import DivergenceGuard, LayerStats
from callbacks.statistics import activation_moments, activation_stats
from callbacks.watched import depth, stat_tag, watched_modules
from models import LSTMClassifier
from train import build


def _fit(make_cfg, *overrides: str) -> tuple[LayerStats, object]:
    cfg = make_cfg("trainer.log_every_n_steps=1", *overrides)
    trainer, module, datamodule = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    stats = next(c for c in trainer.callbacks if isinstance(c, LayerStats))
    return stats, module


def _values(stats: LayerStats, stat: str, step: int = 0) -> dict[str, float]:
    return {r.layer: r.value for r in stats.table if r.stat == stat and r.step == step}


def test_known_weights_give_hand_computed_statistics() -> None:
    x = torch.tensor([[1.0, -2.0, 0.0], [3.0, -1.0, 0.0]])
    stats = activation_stats(activation_moments(torch.relu(x)))
    assert stats["act_mean"].item() == pytest.approx(4 / 6)
    assert stats["act_std"].item() == pytest.approx(torch.tensor([1.0, 0, 0, 3, 0, 0]).std().item())
    assert stats["act_rms"].item() == pytest.approx(math.sqrt(10 / 6))
    assert stats["act_zero_frac"].item() == pytest.approx(4 / 6)
    assert stats["act_dead_frac"].item() == pytest.approx(2 / 3)  # units 2 and 3 never fire


def test_three_layer_mlp_matches_a_hand_computation(make_cfg) -> None:
    # Every weight 0.01, biases 0: each hidden unit computes 0.01 * sum(inputs).
    stats, module = _fit(
        make_cfg,
        "model.depth=2",
        "model.width=4",
        "init=constant",
        "init.value=0.01",
        "trainer.limit_train_batches=1",
    )
    x, _ = next(iter(module.trainer.datamodule.train_dataloader()))  # step 0's batch
    z1 = (0.01 * x.flatten(1).sum(1, keepdim=True)).expand(-1, 4)
    a1 = z1.relu()
    z2 = 0.01 * a1.sum(1, keepdim=True).expand(-1, 4)
    mean, std = _values(stats, "act_mean"), _values(stats, "act_std")
    dead = _values(stats, "act_dead_frac")
    assert mean["000.net.layers.0.0"] == pytest.approx(z1.mean().item(), rel=1e-4)
    assert std["000.net.layers.0.0"] == pytest.approx(z1.std().item(), rel=1e-4)
    assert mean["001.net.layers.0.2"] == pytest.approx(a1.mean().item(), rel=1e-4)
    assert dead["001.net.layers.0.2"] == float((a1 == 0).all())
    assert mean["002.net.layers.1.0"] == pytest.approx(z2.mean().item(), rel=1e-4)


def test_zeros_init_has_no_hidden_gradient(make_cfg) -> None:
    stats, _ = _fit(make_cfg, "init=zeros", "trainer.limit_train_batches=1")
    grads = _values(stats, "act_grad_std")
    hidden = [v for layer, v in grads.items() if "layers" in layer]
    assert hidden and all(v == 0 for v in hidden)


@pytest.mark.slow
def test_normal_large_saturates_a_deep_tanh_mlp(make_cfg) -> None:
    # Pre-activations of std ~0.8 sqrt(1024) = 26: P(|z| < atanh(0.99) = 2.65) is about 0.08.
    stats, _ = _fit(
        make_cfg,
        "init=normal_large",
        "model.depth=10",
        "model.activation=tanh",
        "model.width=1024",
        "trainer.limit_train_batches=1",
    )
    saturated = _values(stats, "act_saturated_frac")
    assert saturated[max(saturated)] > 0.9


class _HookProbe(L.Callback):
    """Which watched modules have forward hooks: in the forward pass (seen just before the
    backward pass) and at the optimizer step, per step."""

    def __init__(self) -> None:
        self.forward: dict[int, tuple[bool, bool]] = {}
        self.at_step: dict[int, bool] = {}

    def on_before_backward(self, trainer: L.Trainer, module: L.LightningModule, loss) -> None:
        hooked = [bool(w.module._forward_hooks) for w in watched_modules(module)]
        self.forward[trainer.global_step] = (all(hooked), any(hooked))

    def on_before_optimizer_step(self, trainer: L.Trainer, module: L.LightningModule, _) -> None:
        self.at_step[trainer.global_step] = any(m._forward_hooks for m in module.modules())


def test_hooks_exist_only_in_the_forward_pass_of_a_logging_step(make_cfg) -> None:
    cfg = make_cfg(
        "model=resnet", "model.depth=8", "stats.every_n_steps=2", "trainer.limit_train_batches=4"
    )
    trainer, module, datamodule = build(cfg)
    probe = _HookProbe()
    trainer.callbacks.append(probe)
    trainer.fit(module, datamodule=datamodule)
    logging_step, other_step = (True, True), (False, False)
    assert probe.forward == {0: logging_step, 1: other_step, 2: logging_step, 3: other_step}
    assert probe.at_step == dict.fromkeys(range(4), False)
    for m in module.modules():
        assert not m._forward_hooks, m


def test_events_hold_the_documented_tags(make_cfg, tmp_path: Path) -> None:
    _fit(make_cfg, "stats=full", "stats.every_n_steps=1", "model=cnn")
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0}).Reload()
    tags = events.Tags()
    scalars = set(tags["scalars"])
    for stat in (
        "act_mean",
        "act_std",
        "act_rms",
        "act_zero_frac",
        "act_dead_frac",
        "act_grad_norm",
        "act_grad_std",
        "grad_norm",
        "grad_to_weight",
        "weight_norm",
        "update_ratio",
        "weight_sigma_max",
    ):
        assert any(t.startswith(stat_tag(stat, "")) for t in scalars), stat
    assert stat_tag("by_depth", "signal_propagation") in tags["images"]
    assert any(t.startswith(stat_tag("colorful_dimension", "")) for t in tags["images"])
    assert any(t.startswith(stat_tag("act_hist", "")) for t in tags["histograms"])


def test_stats_off_adds_no_callback(make_cfg) -> None:
    trainer, _, _ = build(make_cfg("stats=off"))
    assert not any(isinstance(c, LayerStats) for c in trainer.callbacks)
    assert any(isinstance(c, DivergenceGuard) for c in trainer.callbacks)


def test_moments_of_parts_add_up_to_the_whole() -> None:
    """What the DDP reduction relies on: summed moments of two halves give the statistics of
    the whole batch, also when the halves' means differ a lot."""
    x = torch.cat([torch.randn(64, 8) + 100, torch.randn(64, 8) * 3 - 50]).relu()
    parts = [activation_moments(half) for half in x.chunk(2)]
    summed = {k: parts[0][k] + parts[1][k] for k in parts[0] if k != "alive"}
    summed["alive"] = torch.maximum(parts[0]["alive"], parts[1]["alive"])
    whole = activation_stats(activation_moments(x))
    for stat, value in activation_stats(summed).items():
        assert value.item() == pytest.approx(whole[stat].item(), rel=1e-6), stat
    assert whole["act_std"].item() == pytest.approx(x.std().item(), rel=1e-5)


def _by_path(values: dict[str, float]) -> dict[str, float]:
    """Tags without their depth prefix: ``net.head.weight`` for ``004.net.head.weight``."""
    return {tag.split(".", 1)[1]: v for tag, v in values.items()}


def test_lstm_dead_units_are_hidden_units_not_time_steps(make_cfg) -> None:
    # Half the hidden units get a zero cell input (g-gate rows and biases 0): c = 0, so h = 0 for
    # every sample and time step. The output is (batch, time, hidden): dim 1 is time.
    cfg = make_cfg("model=lstm", "model.hidden_size=8", "trainer.limit_train_batches=1")
    trainer, module, datamodule = build(cfg)
    lstm, h = module.net.lstm, 8
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(lstm, name)[2 * h : 2 * h + h // 2] = 0
    trainer.fit(module, datamodule=datamodule)
    stats = next(c for c in trainer.callbacks if isinstance(c, LayerStats))
    assert _by_path(_values(stats, "act_dead_frac"))["net.lstm"] == 0.5


def test_lstm_units_are_the_last_dim_for_both_lstms() -> None:
    for norm in ("none", "layernorm"):
        model = LSTMClassifier((1, 28, 28), 10, hidden_size=8, num_layers=2, norm=norm)
        assert {w.unit_dim for w in watched_modules(model)} == {-1}, norm


def test_parametrized_weights_are_described_by_the_weight_the_layer_uses(make_cfg) -> None:
    cfg = make_cfg(
        "init=spectral",
        "init.parametrize=true",
        "stats=full",
        "model.width=64",
        "trainer.limit_train_batches=1",
    )
    trainer, module, datamodule = build(cfg)
    with torch.no_grad():  # spectral_norm divides it back: the layer still uses sigma 1
        module.net.head.parametrizations.weight.original.mul_(3)
    trainer.fit(module, datamodule=datamodule)
    stats = next(c for c in trainer.callbacks if isinstance(c, LayerStats))
    assert not [r.layer for r in stats.table if "parametrizations" in r.layer]
    sigma = _by_path(_values(stats, "weight_sigma_max"))
    assert sigma["net.head.weight"] == pytest.approx(1.0, rel=1e-3)
    for stat in ("grad_norm", "grad_to_weight", "update_ratio"):
        assert "net.head.weight" in _by_path(_values(stats, stat)), stat


def test_zero_biases_give_no_ratio_at_step_0(make_cfg) -> None:
    # kaiming_normal sets every bias to 0: a ratio over its norm would be 1e9 or more.
    stats, _ = _fit(make_cfg, "stats.every_n_steps=1")
    for stat in ("grad_to_weight", "update_ratio"):
        for step, biases in ((0, 0), (1, 4)):  # after one update the biases are not 0
            tags = _values(stats, stat, step)
            assert sum(t.endswith(".weight") for t in tags) == 4, (stat, step)
            assert sum(t.endswith(".bias") for t in tags) == biases, (stat, step)
        assert max(_values(stats, stat, 0).values()) < 10, stat


@pytest.mark.slow
def test_tags_sort_by_depth_past_99_layers(make_cfg) -> None:
    # 50 x (Linear, LayerNorm, ReLU) + head: 101 watched modules, LayerNorms not watched.
    stats, module = _fit(
        make_cfg,
        "model.depth=50",
        "model.width=8",
        "model.norm=layernorm",
        "trainer.limit_train_batches=1",
    )
    forward = [w.name for w in watched_modules(module)]  # an MLP runs in module order
    layers = sorted(_values(stats, "act_std"))
    assert [t.split(".", 1)[1] for t in layers] == forward
    assert [depth(t) for t in layers] == list(range(len(forward)))
    params = list(_values(stats, "grad_norm"))
    assert sorted(params) == sorted(params, key=lambda t: (depth(t), t))
    assert sorted(_by_path(_values(stats, "grad_norm"))) == sorted(
        name for name, _ in module.named_parameters()
    )
    position = {t.split(".", 1)[1]: depth(t) for t in params}
    assert position["net.head.weight"] == depth(layers[-1])
    assert position["net.layers.49.1.weight"] == position["net.layers.49.0.weight"]  # its Linear's
    assert position["net.layers.49.0.weight"] == forward.index("net.layers.49.0")


@pytest.mark.parametrize(
    ("key", "value", "least"),
    [
        ("every_n_steps", 0, 1),
        ("images_every_n_steps", 0, 1),
        ("hist_bins", 0, 1),
        ("singular_values_every_n_steps", -1, 0),
    ],
)
def test_bad_stats_settings_are_refused_by_name(key: str, value: int, least: int) -> None:
    with pytest.raises(ValueError, match=rf"^stats\.{key} must be >= {least}, got {value}$"):
        LayerStats(**{key: value})


def test_zero_image_period_is_refused_through_the_config(make_cfg) -> None:
    with pytest.raises(Exception, match=r"stats\.images_every_n_steps must be >= 1, got 0"):
        build(make_cfg("stats=full", "stats.images_every_n_steps=0"))
