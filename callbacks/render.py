"""The end-of-training figures of many runs, drawn in parallel worker processes.

Why: drawing is the largest fixed cost a run pays for its statistics (matplotlib, about 0.4 s
per figure, five figures per run), and a population ends with K runs' figures at once. Each
figure only needs its run's table, so worker processes draw them side by side and return the
encoded images; the training process writes them into each run's events as ``add_figure``
would. One run, a platform without ``fork``, or one core: drawn in the process, as before.
"""

import multiprocessing
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard._utils import figure_to_image
from torch.utils.tensorboard.summary import image

from callbacks.dashboard import end_figures

Job = tuple[list, Mapping[str, str], Mapping[str, str], str | None]  # rows, labels, series, title


def draw(job: Job) -> dict[str, bytes]:
    """One run's end figures (``callbacks.dashboard.end_figures``), each as the serialized
    image summary ``SummaryWriter.add_figure`` writes."""
    figures = end_figures(*job)
    return {
        tag: image(tag, figure_to_image(figure), dataformats="CHW").SerializeToString()
        for tag, figure in figures.items()
    }


def _default_signals() -> None:
    """Workers forked inside ``Trainer.fit`` inherit Lightning's SIGTERM handler, which only
    logs: with it a worker would outlive its pool. They get the default handlers back."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def draw_all(jobs: Sequence[Job]) -> list[dict[str, Summary]]:
    """Every run's figures, in order; in ``min(cores, runs)`` forked workers when that is
    more than one."""
    workers = min(len(jobs), len(os.sched_getaffinity(0))) if sys.platform == "linux" else 1
    if workers > 1:
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_default_signals)
        try:
            encoded = pool.map(draw, jobs, chunksize=1)
        finally:  # close and join: terminate() would send SIGTERM to idle workers
            pool.close()
            pool.join()
    else:
        encoded = [draw(job) for job in jobs]
    return [{tag: Summary.FromString(data) for tag, data in run.items()} for run in encoded]
