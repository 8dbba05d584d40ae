"""Lightning's TensorBoard logger, with Lightning's epoch counter filed under ``train/``."""

from collections.abc import Mapping

from lightning.pytorch import loggers


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning adds an ``epoch`` value to every logged step; as a tag of its own it is the
    first group TensorBoard shows, before the loss. Here it is ``train/epoch``."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        renamed = {("train/epoch" if k == "epoch" else k): v for k, v in metrics.items()}
        super().log_metrics(renamed, step)
