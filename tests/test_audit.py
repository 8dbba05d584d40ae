"""The init audit on tiny data: its files, the ranking's direction on a deep ReLU MLP, and an
init that refuses the model listed with its reason."""

from pathlib import Path

import pytest

from tests.support import FAST
from tools.audit import QUICK, run


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("audit")
    overrides = [f"data.root={data_root}", *FAST, "model.depth=10", "model.width=64"]
    return out, {row["init"]: row for row in run(out, True, overrides)["audit"]}


@pytest.mark.slow
def test_kaiming_keeps_the_signal_of_a_deep_relu_mlp_best(audit) -> None:
    _, rows = audit
    assert set(rows) == set(QUICK)
    kaiming = rows["kaiming_normal"]
    assert kaiming["rank"] < rows["normal_small"]["rank"]
    assert kaiming["rank"] < rows["normal_large"]["rank"]
    assert kaiming["_score"] < 1  # activation std and gradient norm within e^1 end to end
    assert kaiming["reason"].startswith("kaiming_normal: activation std ")
    assert "shrink" in rows["normal_small"]["reason"]  # the vanishing direction is named
    assert "grow" in rows["normal_large"]["reason"]


@pytest.mark.slow
def test_a_refusing_init_is_listed_with_its_reason(audit) -> None:
    _, rows = audit
    assert rows["fixup"]["rank"] == ""
    assert rows["fixup"]["reason"].startswith("not applicable: fixup needs residual blocks")


@pytest.mark.slow
def test_writes_the_table_and_a_wide_figure(audit) -> None:
    out, _ = audit
    page = (out / "results.md").read_text()
    assert "| rank | init |" in page and "not applicable" in page
    csv = (out / "audit.csv").read_text().splitlines()
    assert csv[0].startswith("rank,init,") and len(csv) == 1 + len(QUICK)
    from PIL import Image

    with Image.open(out / "audit.png") as image:
        assert image.width >= 900


def test_an_unknown_init_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such init nope; choose from"):
        run(tmp_path, True, [], inits=["nope"])
