"""The end figures of many runs, drawn in worker processes from inside a real fit."""

import subprocess
import sys
import textwrap

import pytest

from tests.support import ROOT

SCRIPT = textwrap.dedent(
    """
    import lightning as L, torch
    from callbacks.layer_stats import Row
    from callbacks.render import draw_all, draw

    rows = [Row(s, f"00{i}.net.l{i}", st, 1.0 + i + s) for s in (0, 50) for i in range(3)
            for st in ("act_std", "act_grad_std", "act_grad_norm", "update_ratio")]
    job = (rows, {}, {}, "x")

    class Draw(L.Callback):
        def on_train_end(self, trainer, module):
            figures = draw_all([job, job, job])
            assert [set(f) for f in figures] == [set(draw(job))] * 3
            print("drawn", len(figures[0]))

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
        def training_step(self, batch, i):
            return (self.w * batch[0]).sum()
        def train_dataloader(self):
            return [torch.ones(2)]
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    L.Trainer(max_steps=1, callbacks=[Draw()], logger=False, enable_checkpointing=False,
              enable_progress_bar=False, accelerator="cpu").fit(Tiny())
    """
)


@pytest.mark.slow
def test_figures_drawn_in_workers_inside_a_fit_return() -> None:
    """Workers forked inside ``Trainer.fit`` inherit Lightning's SIGTERM handler; the pool must
    still end (it hung when its workers swallowed the terminate signal)."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "drawn 4" in result.stdout
