"""Models that misbehave on purpose, plugged into trials by ``model._target_=...`` overrides."""

from __future__ import annotations

import torch
from trainer.models.mlp import MLPClassifier


class CrashingMLP(MLPClassifier):
    """Every training step raises: a trial that can never succeed."""

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        raise RuntimeError("injected crash")
