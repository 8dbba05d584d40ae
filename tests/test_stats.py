"""Per-layer statistics and the divergence guard, through the real config on tiny data."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from callbacks import DivergenceGuard, LayerStats
from callbacks.statistics import activation_moments, activation_stats
from train import build, train


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
    assert mean["00.net.layers.0.0"] == pytest.approx(z1.mean().item(), rel=1e-4)
    assert std["00.net.layers.0.0"] == pytest.approx(z1.std().item(), rel=1e-4)
    assert mean["01.net.layers.0.2"] == pytest.approx(a1.mean().item(), rel=1e-4)
    assert dead["01.net.layers.0.2"] == float((a1 == 0).all())
    assert mean["02.net.layers.1.0"] == pytest.approx(z2.mean().item(), rel=1e-4)


def test_zeros_init_has_no_hidden_gradient(make_cfg) -> None:
    stats, _ = _fit(make_cfg, "init=zeros", "trainer.limit_train_batches=1")
    grads = _values(stats, "act_grad_std")
    hidden = [v for layer, v in grads.items() if "layers" in layer]
    assert hidden and all(v == 0 for v in hidden)


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


def test_nan_triggers_the_guard_with_layer_and_step(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "init=normal_large",
        "model.depth=6",
        "optimizer.lr=1e6",
        "trainer.limit_train_batches=8",
        "trainer.max_epochs=2",
    )
    record = train(cfg)
    assert record["status"] == "diverged"
    divergence = record["divergence"]
    assert divergence["step"] < 8 and divergence["layer"]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["status"] == "diverged" and saved["divergence"] == divergence


def _feed(guard: DivergenceGuard, losses: list[float]) -> SimpleNamespace:
    """Run the guard's per-step hook over these losses, as steps 0, 1, ... of one epoch."""
    trainer = SimpleNamespace(global_step=0, should_stop=False)
    module = torch.nn.Sequential(torch.nn.Linear(2, 2))
    for step, loss in enumerate(losses):
        trainer.global_step = step + 1
        guard.on_train_batch_end(
            trainer, module, {"loss": torch.tensor(loss)}, [torch.ones(1, 2)], step
        )
    guard.on_train_epoch_end(trainer, module)
    return trainer


@pytest.mark.parametrize(
    ("losses", "step", "loss"),
    [
        ([1.0, 2.0, 500.0, math.nan, 1.0], 2, 500.0),  # above max_loss, in the first window
        ([1.0, 2.0, 3.0, 4.0, 5.0, math.inf, math.nan], 5, math.inf),  # second window
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], None, None),  # all finite and small
    ],
)
def test_guard_names_the_first_bad_step(losses: list[float], step, loss) -> None:
    guard = DivergenceGuard(max_loss=100.0, every_n_steps=4)
    trainer = _feed(guard, losses)
    if step is None:
        assert guard.divergence is None and not trainer.should_stop
    else:
        assert (guard.divergence.step, guard.divergence.loss) == (step, loss)
        assert trainer.should_stop


def test_guard_checks_the_last_steps_at_epoch_end() -> None:
    guard = DivergenceGuard(max_loss=100.0, every_n_steps=4)
    _feed(guard, [1.0, 2.0, 3.0, 4.0, 5.0, math.nan])  # step 5 is in a window never filled
    assert guard.divergence.step == 5


def test_hooks_are_removed_after_fit(make_cfg) -> None:
    _, module = _fit(make_cfg, "model=resnet", "model.depth=8")
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
        assert any(t.startswith(stat + "/") for t in scalars), stat
    assert "signal_propagation" in tags["images"]
    assert any(t.startswith("colorful_dimension/") for t in tags["images"])
    assert any(t.startswith("act_hist/") for t in tags["histograms"])


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
