"""Models that misbehave on purpose, plugged into trials by ``model._target_=...`` overrides."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from trainer.models.mlp import MLPClassifier


class CrashingMLP(MLPClassifier):
    """Every training step raises: a trial that can never succeed."""

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        raise RuntimeError("injected crash")


BALLAST_FLOATS = 2**29  # 2 GiB of float32: more than the test's memory limit per worker


class MemoryHogMLP(MLPClassifier):
    """The first training step allocates (and touches) 2 GiB: OOM under a smaller limit."""

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        self.ballast = torch.ones(BALLAST_FLOATS)
        return super().training_step(batch, batch_idx)


class HeldMLP(MLPClassifier):
    """From its second epoch on, every training step waits while ``hold_file`` exists.

    A fault test's trials then run as long as it needs (the first epoch's report shows a trial
    as running), and the rest of the study at full speed once the test removes the file. A
    SIGTERM ends the wait, so the worker stops as it would mid-step.
    """

    def __init__(self, *, hold_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_file = Path(hold_file)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        held = self.current_epoch >= 1
        while held and self.hold_file.exists() and not self.trainer.received_sigterm:
            time.sleep(0.05)
        return super().training_step(batch, batch_idx)
