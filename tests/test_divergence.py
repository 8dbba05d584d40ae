"""The divergence guard: the first bad step, the layer that broke at that step, a clean stop."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import nn

from callbacks import DivergenceGuard
from train import train


def _trainer() -> SimpleNamespace:
    """What the guard reads of a one-process Trainer."""
    return SimpleNamespace(
        global_step=0,
        should_stop=False,
        world_size=1,
        global_rank=0,
        strategy=SingleDeviceStrategy(torch.device("cpu")),
        precision_plugin=Precision(),
    )


def _step(guard: DivergenceGuard, trainer, module: nn.Module, step: int, loss: float) -> None:
    """One training step as the guard sees it, on a batch of its own."""
    batch = [torch.full((4, 2), float(step + 1))]
    guard.on_train_batch_start(trainer, module, batch, step)
    module(batch[0])  # the training forward (BatchNorm statistics move)
    trainer.global_step = step + 1
    guard.on_train_batch_end(trainer, module, {"loss": torch.tensor(loss)}, batch, step)


def _feed(guard: DivergenceGuard, losses: list[float], module=None, before_step=None):
    """Run the guard's hooks over these losses, as steps 0, 1, ... of one epoch;
    ``before_step(step)`` changes the model as the updates before that step would."""
    trainer = _trainer()
    module = module or nn.Sequential(nn.Linear(2, 2))
    for step, loss in enumerate(losses):
        if before_step is not None:
            before_step(step)
        _step(guard, trainer, module, step, loss)
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


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    for layer in net[::2]:
        nn.init.uniform_(layer.weight, 0.0, 0.5)  # small, positive: outputs of order 1
    return net


def test_layer_is_the_one_that_broke_at_the_bad_step() -> None:
    """Layer 2 blows up before step 2; later "updates" make layer 0 NaN. The guard checks at
    step 3 and must name layer 2, as the step-2 forward pass saw it."""
    net = _net()

    def updates(step: int) -> None:
        with torch.no_grad():
            if step == 2:
                net[2].weight.mul_(1e6)
            if step == 3:
                net[0].weight.fill_(math.nan)

    guard = DivergenceGuard(max_loss=100.0, every_n_steps=4)
    _feed(guard, [1.0, 1.0, math.inf, math.nan], net, updates)
    assert (guard.divergence.step, guard.divergence.layer) == (2, "2")
    assert net[0].weight.isnan().all()  # the model's own weights are back


def test_a_large_loss_from_small_outputs_names_no_layer() -> None:
    guard = DivergenceGuard(max_loss=100.0, every_n_steps=4)
    _feed(guard, [1.0, 500.0], _net())
    assert (guard.divergence.step, guard.divergence.layer) == (1, None)


def test_replay_restores_batchnorm_statistics() -> None:
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    guard, trainer = DivergenceGuard(max_loss=100.0, every_n_steps=4), _trainer()
    for step in range(3):
        _step(guard, trainer, net, step, 1.0)
    batch = [torch.ones(4, 2)]
    guard.on_train_batch_start(trainer, net, batch, 3)
    net(batch[0])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trainer.global_step = 4
    guard.on_train_batch_end(trainer, net, {"loss": torch.tensor(math.nan)}, batch, 3)
    assert guard.divergence.step == 3  # checked and replayed
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0, msg=key)


def _strict(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_nan_triggers_the_guard_with_layer_and_step(make_cfg, tmp_path: Path) -> None:
    """Layer ``net.layers.1.0`` turns NaN before step 3; its updates then spread NaN to every
    layer, so only a check of step 3 itself names it."""
    inject = [
        "+callbacks.inject._target_=tests.helpers.BlowUpWeight",
        "+callbacks.inject.step=3",
        "+callbacks.inject.param=net.layers.1.0.weight",
        "+callbacks.inject.factor=nan",
    ]
    cfg = make_cfg("model.depth=3", "model.width=32", "trainer.limit_train_batches=6", *inject)
    record = train(cfg)
    assert record.status == "diverged"
    assert record.divergence.step == 3 and record.divergence.layer == "net.layers.1.0"
    saved = _strict((tmp_path / "run" / "metrics.json").read_text())  # NaN written as null
    assert saved["status"] == "diverged" and saved["divergence"]["layer"] == "net.layers.1.0"
    assert saved["divergence"]["loss"] is None and saved["metrics"]["train/loss_epoch"] is None
