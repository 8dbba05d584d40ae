"""A population's members are their single runs: same losses step by step, same files."""

import json
from pathlib import Path

import hydra.utils
import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from population.run import build_members, train_population
from runs.build import build_run
from tests.support import SMALL_MODELS, member_runs
from train import train

MEMBERS = [
    ["init=kaiming_normal", "seed=0"],
    ["init=xavier_normal", "seed=1", "optimizer.lr=0.1"],
    ["init=orthogonal", "seed=2", "optimizer=adam"],
]
FIXUP_MEMBERS = [["init=fixup", "seed=0"], ["init=skipinit", "seed=1"], ["init=rezero", "seed=2"]]
# With BatchNorm after a biased conv, the bias's gradient is zero up to float32 rounding, and
# Adam turns that noise into lr-sized steps: two exact implementations then differ by ~1e-3 in
# the eval loss. SGD there (Adam is covered by the other models).
LSUV_MEMBERS = [["init=lsuv", "seed=0"], ["init=lsuv", "seed=1", "optimizer=adam"]]
BATCHNORM_MEMBERS = [*MEMBERS[:2], ["init=orthogonal", "seed=2", "optimizer.momentum=0.5"]]


def scalars(folder: Path, tag: str) -> dict[int, float]:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0}).Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


GPU = pytest.param(
    "gpu", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
)


# The MLPs in the fast core; the conv nets take 2-6 s each on 2 CPU cores.
MEMBER_MODELS = [
    m if m.startswith("mlp") else pytest.param(m, marks=pytest.mark.slow) for m in SMALL_MODELS
]


@pytest.mark.parametrize("accelerator", ["cpu", GPU])
@pytest.mark.parametrize("model", MEMBER_MODELS)
def test_members_train_exactly_as_their_single_runs(
    make_cfg, tmp_path: Path, model: str, accelerator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU too, where convolutions are grouped, in float32: cuDNN's TF32 convolutions
    (``torch.backends.cudnn.allow_tf32``, on by default) would round the two differently."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    common = [*SMALL_MODELS[model], "trainer.log_every_n_steps=1", "stats=off"]
    common.append(f"trainer.accelerator={accelerator}")
    variants = {
        "resnet_fixup": FIXUP_MEMBERS,
        "resnet_batchnorm": BATCHNORM_MEMBERS,
        "mlp_batchnorm": BATCHNORM_MEMBERS,
        "cnn_cifar_augment_lsuv": LSUV_MEMBERS,
    }.get(model, MEMBERS)
    records = train_population(member_runs(make_cfg, tmp_path, common, variants))
    for i, variant in enumerate(variants):
        single = train(make_cfg(*common, *variant, output_dir=tmp_path / f"single{i}"))
        member = records[i]
        assert member.status == single.status == "finished"
        expected = scalars(tmp_path / f"single{i}", "train/loss_step")
        got = scalars(tmp_path / f"member{i}", "train/loss_step")
        assert got.keys() == expected.keys() and len(got) >= 2
        for step in expected:
            assert got[step] == pytest.approx(expected[step], rel=1e-4, abs=1e-5), (variant, step)
        for key in ("val/acc", "test/acc", "val/loss", "train/loss_epoch"):
            assert member.metrics[key] == pytest.approx(single.metrics[key], rel=1e-4), (
                variant,
                key,
            )
        assert member.choices == single.choices and member.seed == single.seed
        assert member.hparams == single.hparams
        saved = json.loads((tmp_path / f"member{i}" / "metrics.json").read_text())
        assert saved == member.to_dict()


def test_member_folders_hold_what_a_single_run_writes(make_cfg, tmp_path: Path) -> None:
    common = [*SMALL_MODELS["mlp"], "trainer.log_every_n_steps=2"]
    records = train_population(member_runs(make_cfg, tmp_path, common, MEMBERS[:2]))
    single = train(make_cfg(*common, *MEMBERS[0], output_dir=tmp_path / "single"))
    assert records[0].metrics.keys() == single.metrics.keys()
    tags = EventAccumulator(str(tmp_path / "single")).Reload().Tags()
    member_tags = EventAccumulator(str(tmp_path / "member0")).Reload().Tags()
    for kind in ("scalars", "images", "tensors"):
        assert sorted(member_tags[kind]) == sorted(tags[kind]), kind
    files = {p.name for p in (tmp_path / "single" / "checkpoints").iterdir()}
    member_files = {p.name for p in (tmp_path / "member0" / "checkpoints").iterdir()}
    assert member_files == files


CHECKPOINT_SETTINGS = {  # what a member's own ModelCheckpoint must do as its single run's
    "monitor_train_epoch": [
        "callbacks.model_checkpoint.monitor=train/loss_epoch",
        "callbacks.model_checkpoint.mode=min",
        "callbacks.model_checkpoint.filename=best",
        "+callbacks.model_checkpoint.save_top_k=2",
    ],
    "no_dirpath_weights_only": [
        "callbacks.model_checkpoint.dirpath=null",
        "+callbacks.model_checkpoint.save_weights_only=true",
    ],
}


@pytest.mark.parametrize("setting", list(CHECKPOINT_SETTINGS))
def test_member_checkpoints_follow_their_own_settings(make_cfg, tmp_path: Path, setting) -> None:
    """Where the files go (no ``dirpath``: under the member's logger), what they hold
    (``save_weights_only``) and what is monitored (an epoch-end training metric, logged just
    before the callback runs) are the single run's."""
    common = [
        *SMALL_MODELS["mlp"],
        "stats=off",
        "trainer.max_epochs=2",
        *CHECKPOINT_SETTINGS[setting],
    ]
    records = train_population(member_runs(make_cfg, tmp_path, common, MEMBERS[:2]))
    single = train(make_cfg(*common, *MEMBERS[1], output_dir=tmp_path / "single"))
    files = {p.relative_to(tmp_path / "single") for p in (tmp_path / "single").rglob("*.ckpt")}
    member = tmp_path / "member1"
    assert {p.relative_to(member) for p in member.rglob("*.ckpt")} == files and files
    for path in files:
        expected = torch.load(tmp_path / "single" / path, weights_only=False)
        assert torch.load(member / path, weights_only=False).keys() == expected.keys(), path
    assert records[1].metrics["val/acc_best"] == pytest.approx(
        single.metrics["val/acc_best"], rel=1e-4
    )


def _callback_states(run: Path) -> dict:
    """The callbacks' state in a run's ``last.ckpt``, its folder written as ``RUN``."""
    states = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["callbacks"]
    return json.loads(json.dumps(states, default=float).replace(str(run), "RUN"))


def test_a_member_checkpoint_resumes_as_a_single_run(make_cfg, tmp_path: Path) -> None:
    """The member's ``last.ckpt`` holds what its single run's holds, its ModelCheckpoint's
    state too (best score and file), so a resumed run remembers its best."""
    common = [*SMALL_MODELS["cnn"], "stats=off"]
    records = train_population(member_runs(make_cfg, tmp_path, common, MEMBERS[:2]))
    train(make_cfg(*common, *MEMBERS[1], output_dir=tmp_path / "single"))
    member, single = _callback_states(tmp_path / "member1"), _callback_states(tmp_path / "single")
    assert member.keys() == single.keys() and len(member) == 1
    (state,), (expected,) = member.values(), single.values()
    assert state.keys() == expected.keys()
    assert state["best_model_score"] == pytest.approx(expected["best_model_score"], rel=1e-4)
    assert state["best_model_score"] == pytest.approx(records[1].metrics["val/acc_best"])
    assert Path(state["best_model_path"].replace("RUN", str(tmp_path / "member1"))).exists()
    folder = tmp_path / "member1" / "checkpoints"
    weights = torch.load(folder / "last.ckpt", weights_only=False)["state_dict"]
    assert all(k.startswith("net.") for k in weights)
    resumed = train(
        make_cfg(
            *common,
            *MEMBERS[1],
            "trainer.max_epochs=2",
            f"ckpt_path={folder}/last.ckpt",
            output_dir=tmp_path / "member1",
        )
    )
    assert resumed.status == "finished" and resumed.epochs == 2
    best = max(state["best_model_score"], resumed.metrics["val/acc"])
    assert resumed.metrics["val/acc_best"] == pytest.approx(best)
    # it knew its first best file: kept it or replaced it, never a second "best"
    assert len([p for p in folder.iterdir() if p.name != "last.ckpt"]) == 1


def test_a_diverging_member_is_frozen_and_the_others_finish(make_cfg, tmp_path: Path) -> None:
    common = [*SMALL_MODELS["mlp"], "stats=off", "callbacks.divergence_guard.every_n_steps=2"]
    variants = [["init=kaiming_normal", "seed=0"], ["init=normal_large", "optimizer.lr=1e6"]]
    records = train_population(member_runs(make_cfg, tmp_path, common, variants))
    assert records[0].status == "finished"
    singles = [
        train(make_cfg(*common, *v, output_dir=tmp_path / f"single{i}"))
        for i, v in enumerate(variants)
    ]
    assert records[0].metrics["val/acc"] == pytest.approx(singles[0].metrics["val/acc"])
    diverged, single = records[1], singles[1]
    assert diverged.status == single.status == "diverged"
    for key in ("epochs", "steps", "hparams"):
        assert getattr(diverged, key) == getattr(single, key), key
    assert diverged.divergence.step == single.divergence.step
    assert diverged.divergence.layer == single.divergence.layer
    assert diverged.divergence.loss == pytest.approx(single.divergence.loss, rel=1e-4)
    assert diverged.metrics.keys() == single.metrics.keys()
    for key, value in single.metrics.items():  # null where the single run's is NaN/Inf
        assert diverged.metrics[key] == (value if value is None else pytest.approx(value, rel=1e-4))


def test_a_member_whose_init_fails_is_recorded_and_the_others_train(
    make_cfg, tmp_path: Path
) -> None:
    common = [*SMALL_MODELS["mlp"], "stats=off"]
    runs = member_runs(make_cfg, tmp_path, common, MEMBERS[:2])
    bad: DictConfig = runs[1][0]
    bad.init = OmegaConf.create({"_target_": "tests.helpers.raising_init", "_partial_": True})
    records = train_population(runs)
    assert records[0].status == "finished"
    assert records[1].status == "failed" and "injected failure" in records[1].error
    saved = json.loads((tmp_path / "member1" / "metrics.json").read_text())
    assert saved["status"] == "failed"


def test_missing_data_fails_every_member_in_its_metrics(make_cfg, tmp_path: Path) -> None:
    runs = member_runs(
        make_cfg, tmp_path, ["stats=off", f"data.root={tmp_path / 'none'}"], MEMBERS[:2]
    )
    records = train_population(runs)
    for i, record in enumerate(records):
        assert record.status == "failed" and "no usable dataset" in record.error
        saved = json.loads((tmp_path / f"member{i}" / "metrics.json").read_text())
        assert saved == record.to_dict()


@pytest.mark.parametrize("model", ["mlp", "cnn_cifar_augment_lsuv", "resnet_fixup"])
def test_a_member_is_built_by_the_single_runs_path(make_cfg, tmp_path: Path, model: str) -> None:
    """``runs.build.build_run`` builds both: the same initialized net, the same callbacks."""
    variants = FIXUP_MEMBERS if model == "resnet_fixup" else LSUV_MEMBERS
    runs = member_runs(make_cfg, tmp_path, SMALL_MODELS[model], variants)
    datamodule = hydra.utils.instantiate(runs[0][0].data)
    members = build_members(runs, datamodule)
    assert len(members) == len(variants)
    for variant, (_, _, member) in zip(variants, members, strict=True):
        single = build_run(make_cfg(*SMALL_MODELS[model], *variant, output_dir=tmp_path / "s"))
        pairs = zip(single.net.state_dict().items(), member.net.state_dict().items(), strict=True)
        for (name, expected), (member_name, got) in pairs:
            assert name == member_name and torch.equal(got, expected), name
        assert [type(c) for c in member.callbacks] == [type(c) for c in single.callbacks]
        assert [type(lg) for lg in member.loggers] == [type(lg) for lg in single.loggers]
        assert type(member.module) is type(single.module)
