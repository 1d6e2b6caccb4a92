"""A LightningModule that logs its metrics once per epoch, from running means.

Both hpo models accumulate per-step values in ``RunningMean``s and hand each metric to
``self.log`` once per epoch (a ``self.log`` call costs about as much as a small model's step).
The epoch-end hooks and the validation/test steps are the same for every such model; a model
says only which metrics it keeps and how one evaluation batch updates them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import lightning as L
import torch

from trainer.models.metrics import RunningMean

__all__ = ["EpochMeansModule"]

Batch = tuple[torch.Tensor, torch.Tensor]


class EpochMeansModule(L.LightningModule):
    """Logs ``<stage>_<metric>`` means at the end of each train, validation and test epoch."""

    def __init__(self, metric_names: Iterable[str]) -> None:
        super().__init__()
        self.epoch_means = {name: RunningMean() for name in metric_names}

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets `_current_fx_name` around every hook call (~18,000 times in a 20-epoch
        # digits trial); it is always a str or None, so nn.Module's checks for parameters,
        # buffers and submodules are skipped for it (~8 % of such a trial, bench/train.py).
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Accumulate the validation metrics of one batch."""
        self._update_eval("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        """Accumulate the test metrics of one batch."""
        self._update_eval("test", batch)

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training means."""
        self._log_epoch_means("train")

    def on_validation_epoch_end(self) -> None:
        """Log the validation means over the whole split."""
        self._log_epoch_means("val")

    def on_test_epoch_end(self) -> None:
        """Log the test means over the whole split."""
        self._log_epoch_means("test")

    def _update_eval(self, stage: str, batch: Batch) -> None:
        """Add one evaluation batch to the ``stage`` means (each model says how)."""
        raise NotImplementedError

    def _log_epoch_means(self, stage: str) -> None:
        for name, mean in self.epoch_means.items():
            if name.startswith(f"{stage}_") and not mean.empty:
                self.log(name, mean.compute())
                mean.reset()
