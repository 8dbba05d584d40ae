"""Per-member statistics: member k of a population logs what its single run logs, from one
stacked forward and backward pass."""

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from callbacks.statistics import (
    activation_moments,
    activation_stats,
    gradient_moments,
    gradient_stats,
    histogram,
    parameter_stats,
)
from callbacks.watched import STAT_PREFIX, watched_modules
from models import CNN
from population.run import train_population
from population.stacked import stack
from tests.support import SMALL_MODELS, member_runs
from train import train

K = 3
MODELS = {k: SMALL_MODELS[k] for k in ("mlp_layernorm_tanh", "cnn", "resnet_batchnorm")}
MEMBERS = [
    ["init=kaiming_normal", "seed=0"],
    ["init=xavier_normal", "seed=1", "optimizer.lr=0.1"],
    ["init=orthogonal", "seed=2", "optimizer=adam"],
]


def _members(*shape: int) -> list[torch.Tensor]:
    """K outputs of one layer that differ a lot: means, spreads, dead units."""
    torch.manual_seed(0)
    outs = [torch.randn(*shape) * 3 + 5, torch.randn(*shape) * 0.1 + 1, torch.randn(*shape)]
    outs[2][:, 1] = 0  # a dead unit (a feature of a Linear, a channel of a conv)
    return outs


@pytest.mark.parametrize(
    ("shape", "unit_dim", "bounded"),
    [((6, 5), -1, None), ((4, 3, 5, 5), 1, None), ((6, 5), -1, "tanh"), ((6, 5), -1, "sigmoid")],
)
def test_each_members_moments_are_its_own(shape, unit_dim: int, bounded: str | None) -> None:
    outs = _members(*shape)
    if bounded:
        outs = [o.tanh() if bounded == "tanh" else o.sigmoid() for o in outs]
    else:
        outs = [o.relu() for o in outs]
    stacked = torch.cat(outs)  # the stacked model's layout: member k's batch in block k
    together = activation_stats(activation_moments(stacked, bounded, unit_dim, members=K))
    grads = gradient_stats(gradient_moments(stacked * 2, members=K), "act_grad")
    for k, out in enumerate(outs):
        alone = activation_stats(activation_moments(out, bounded, unit_dim))
        alone |= gradient_stats(gradient_moments(out * 2), "act_grad")
        assert set(together) | set(grads) == set(alone)
        for stat, value in alone.items():
            got = (together | grads)[stat][k]
            assert got.item() == pytest.approx(value.item(), rel=1e-6, abs=1e-12), (stat, k)
    if bounded != "sigmoid":  # sigmoid(0) is 0.5: the zeroed unit fires
        assert together["act_dead_frac"].tolist() == pytest.approx([0, 0, 1 / shape[unit_dim]])


def test_each_members_histogram_is_its_own_histc() -> None:
    outs = _members(8, 7)
    outs[1][0, 0], outs[2][0, :3] = float("nan"), float("inf")  # NaN: not counted, as histc
    counts = histogram(torch.cat(outs), 16, 2.0, members=K)
    assert counts.shape == (K, 16)
    for k, out in enumerate(outs):
        assert torch.equal(counts[k], torch.histc(out.clamp(-2, 2), 16, -2, 2)), k


def test_each_members_parameter_stats_are_its_own_and_a_nan_member_stops_none() -> None:
    torch.manual_seed(0)
    weights, grads = torch.randn(K, 6, 4, 3), torch.randn(K, 6, 4, 3)
    weights[1] *= 10
    weights[2, 0, 0, 0] = float("nan")  # a diverged member: its SVD would raise
    together = parameter_stats(weights, grads, singular_value=True)
    for k in range(K - 1):
        alone = parameter_stats(weights[k][None], grads[k][None], singular_value=True)
        for stat, value in alone.items():
            assert together[stat][k].item() == pytest.approx(value.item(), rel=1e-6), (stat, k)
    assert together["weight_sigma_max"][2].isnan()


def test_a_stacked_model_is_watched_as_the_model_it_stacks() -> None:
    nets = [CNN((1, 28, 28), 10, channels=[4, 8], hidden=16, activation="tanh") for _ in range(K)]
    single = watched_modules(nn.ModuleDict({"net": nets[0]}))
    stacked = watched_modules(nn.ModuleDict({"net": stack(nets)}))
    assert [(w.name, w.kind, w.bounded, w.unit_dim) for w in stacked] == [
        (w.name, w.kind, w.bounded, w.unit_dim) for w in single
    ]
    assert [w.label for w in stacked] == [w.label for w in single]  # "layers.0 Conv2d"


def _statistics(folder: Path) -> tuple[dict, dict[tuple[str, int], float]]:
    """The tags a run's events hold, by kind, and its statistics' values by (tag, step)."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0}).Reload()
    tags = events.Tags()
    values = {
        (tag, e.step): e.value
        for tag in tags["scalars"]
        if tag.startswith(STAT_PREFIX)
        for e in events.Scalars(tag)
    }
    return {kind: sorted(tags[kind]) for kind in ("scalars", "histograms", "images")}, values


@pytest.mark.slow
@pytest.mark.parametrize("model", list(MODELS))
def test_members_log_the_statistics_of_their_single_runs(
    make_cfg, tmp_path: Path, model: str
) -> None:
    common = [*MODELS[model], "stats=full", "stats.every_n_steps=1"]
    common += ["stats.singular_values_every_n_steps=1", "trainer.log_every_n_steps=1"]
    records = train_population(member_runs(make_cfg, tmp_path, common, MEMBERS))
    for i, variant in enumerate(MEMBERS):
        train(make_cfg(*common, *variant, output_dir=tmp_path / f"single{i}"))
        assert records[i].status == "finished"
        tags, expected = _statistics(tmp_path / f"single{i}")
        member_tags, got = _statistics(tmp_path / f"member{i}")
        for kind, names in tags.items():
            assert set(member_tags[kind]) ^ set(names) == set(), (variant, kind)
        assert got.keys() == expected.keys() and {s for _, s in got} == {0, 1}
        # Step 0 is the bar; after an update, Adam on a bias that BatchNorm cancels
        # (gradient ~1e-9, below its eps) steps by rounding noise, so later values may differ.
        for (tag, step), value in expected.items():
            if step == 0:
                assert got[tag, step] == pytest.approx(value, rel=1e-4, abs=1e-6), (variant, tag)


@pytest.mark.slow
def test_a_diverged_members_statistics_stop_and_the_others_go_on(make_cfg, tmp_path) -> None:
    common = [*MODELS["cnn"], "stats=full", "stats.every_n_steps=1", "trainer.log_every_n_steps=1"]
    common += ["stats.singular_values_every_n_steps=1", "trainer.limit_train_batches=6"]
    common += ["callbacks.divergence_guard.every_n_steps=2"]
    runs = member_runs(make_cfg, tmp_path, common, MEMBERS)[:2]
    runs[1][0].optimizer.lr = 1e30  # NaN weights after a few steps: their SVD must not raise
    records = train_population(runs)
    assert [r.status for r in records] == ["finished", "diverged"]
    steps = [{step for _, step in _statistics(tmp_path / f"member{i}")[1]} for i in range(2)]
    assert steps[0] == set(range(6))
    assert max(steps[1]) < records[1].steps < 6
