"""A real sweep, served by the real TensorBoard, read through its HTTP data API: what a user's
browser gets (run names, the HParams experiment and rows, tags, seed aggregates)."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import FAST_CLI, ROOT
from tools.screenshots import free_port, start_tensorboard, stop

pytestmark = pytest.mark.slow  # sweeps in subprocesses, then a TensorBoard server

SWEEP = ["init=kaiming_normal,xavier_normal", "seed=0,1", "model.depth=2", "model.width=16"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data_root: Path):
    """A 2 inits x 2 seeds sweep (one run made to fail), then ``tensorboard`` on its folder."""
    logs = tmp_path_factory.mktemp("logs")
    inject = [
        "+callbacks.inject._target_=tests.helpers.RaiseFor",
        "+callbacks.inject.when=xavier_normal-1",
        "+callbacks.inject.run=${hydra:runtime.choices.init}-${seed}",
    ]
    command = [sys.executable, "train.py", "-m", *SWEEP, *FAST_CLI, *inject]
    command += [f"data.root={data_root}", f"paths.log_dir={logs}", "trainer.log_every_n_steps=1"]
    sweep = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert sweep.returncode == 1, sweep.stderr[-3000:]  # the injected failure
    (folder,) = (logs / "multiruns").iterdir()
    port = free_port()
    server = start_tensorboard(folder, port, timeout=120)  # serves a first run
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while len(_get(url, "/data/runs")) < 5 and time.monotonic() < deadline:
            time.sleep(1)  # until it has read every run: 4 jobs and 1 aggregate
        yield url, sweep.stdout + sweep.stderr, folder
    finally:
        stop(server)


def _get(url: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_runs_are_named_by_what_the_sweep_varies(server) -> None:
    url, output, folder = server
    runs = set(_get(url, "/data/runs"))
    singles = {f"init={i},seed={s}" for i in ("kaiming_normal", "xavier_normal") for s in (0, 1)}
    assert singles <= runs
    assert {"mean/init=kaiming_normal"} <= runs  # xavier has one finished seed: no aggregate
    assert f"tensorboard --logdir {folder.resolve()}" in output


def test_hparams_tell_the_inits_apart(server) -> None:
    url, _, _ = server
    experiment = _get(url, "/data/plugin/hparams/experiment", {"experimentName": ""})
    columns = {info["name"]: info for info in experiment["hparamInfos"]}
    assert {"init", "init.mode", "model", "model.depth", "seed", "optimizer.lr"} <= set(columns)
    assert columns["init"]["type"] == "DATA_TYPE_STRING" and "domainDiscrete" not in columns["init"]
    shown = [name for name, info in sorted(columns.items()) if info["differs"]]
    assert shown == ["init", "model", "optimizer.lr", "seed", "status"]  # the page's first 5
    assert not any("_target_" in name or "_partial_" in name or "dir" in name for name in columns)
    metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert metrics[:3] == ["val/acc", "val/acc_best", "test/acc"]


def test_every_run_has_a_row_with_its_status(server) -> None:
    url, _, _ = server
    request = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE"],
        "colParams": [{"hparam": "init"}, {"hparam": "status"}],
        "startIndex": 0,
        "sliceSize": 100,
    }
    groups = _get(url, "/data/plugin/hparams/session_groups", request)["sessionGroups"]
    statuses = {s["name"]: s["status"] for g in groups for s in g["sessions"]}
    inits = {g["hparams"]["init"] for g in groups}
    assert inits == {"kaiming_normal", "xavier_normal"}  # the column tells the inits apart
    assert statuses["init=xavier_normal,seed=1"] == "STATUS_FAILURE"
    assert statuses["init=kaiming_normal,seed=0"] == "STATUS_SUCCESS"
    assert "mean/init=kaiming_normal" in statuses


def test_aggregate_run_has_mean_and_spread(server) -> None:
    url, _, folder = server
    tags = _get(url, "/data/plugin/scalars/tags")["mean/init=kaiming_normal"]
    for tag in ("val/acc", "val/acc/seeds_min", "val/acc/seeds_max", "train/loss_step"):
        assert tag in tags, sorted(tags)
    query = "?run=mean/init=kaiming_normal&tag=val/acc"
    mean = _get(url, f"/data/plugin/scalars/scalars{query}")[-1][2]
    values = [
        json.loads((folder / f"init=kaiming_normal,seed={s}" / "metrics.json").read_text())
        for s in (0, 1)
    ]
    expected = sum(v["metrics"]["val/acc"] for v in values) / 2
    assert mean == pytest.approx(expected, rel=1e-5)


def test_a_new_inits_knob_gets_a_column(data_root: Path, tmp_path: Path) -> None:
    """A YAML-only init (written here, found on Hydra's search path) with a knob no other init
    has: the real TensorBoard's HParams experiment lists ``init.<knob>``, with its value."""
    (tmp_path / "conf" / "init").mkdir(parents=True)
    (tmp_path / "conf" / "init" / "wobbly.yaml").write_text(
        "_target_: tests.helpers.wobbled_normal\n_partial_: true\nwobble: 0.07\n"
    )
    run = tmp_path / "run"
    command = [sys.executable, "train.py", "init=wobbly", *FAST_CLI, f"data.root={data_root}"]
    command += [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"hydra.run.dir={run}"]
    command += ["stats=off", "model.depth=1", "model.width=8"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    port = free_port()
    server = start_tensorboard(run, port, timeout=120)
    try:
        url = f"http://127.0.0.1:{port}"
        experiment = _get(url, "/data/plugin/hparams/experiment", {"experimentName": ""})
        columns = {info["name"]: info for info in experiment["hparamInfos"]}
        assert columns["init.wobble"]["type"] == "DATA_TYPE_FLOAT64"
        request = {"experimentName": "", "startIndex": 0, "sliceSize": 10}
        request["allowedStatuses"] = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE"]
        request["colParams"] = [{"hparam": "init"}, {"hparam": "init.wobble"}]
        (group,) = _get(url, "/data/plugin/hparams/session_groups", request)["sessionGroups"]
        assert group["hparams"]["init"] == "wobbly" and group["hparams"]["init.wobble"] == 0.07
    finally:
        stop(server)
