"""Optuna's Lightning pruning callback, riding out a database restart."""

from __future__ import annotations

from typing import Any

import optuna
from optuna_integration import PyTorchLightningPruningCallback

from trainer.storage import with_retries

__all__ = ["ResilientPruning"]


class ResilientPruning(PyTorchLightningPruningCallback):  # type: ignore[misc]
    """Reports the monitored metric every epoch and prunes; retries while the database is down.

    A restart in the moment of reporting would otherwise fail the trial. Reporting the same epoch
    twice is harmless: the value is overwritten.
    """

    def __init__(self, trial: optuna.Trial, monitor: str, outage_s: float) -> None:
        super().__init__(trial, monitor)
        self.outage_s = outage_s

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Report and maybe prune, as Optuna's callback does."""
        report = super().on_validation_end
        with_retries(lambda: report(trainer, pl_module), self.outage_s)
