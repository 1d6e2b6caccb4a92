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


BALLAST_FLOATS = 2**29  # 2 GiB of float32: more than the test's memory limit per worker


class MemoryHogMLP(MLPClassifier):
    """The first training step allocates (and touches) 2 GiB: OOM under a smaller limit."""

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        self.ballast = torch.ones(BALLAST_FLOATS)
        return super().training_step(batch, batch_idx)
