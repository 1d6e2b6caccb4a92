"""Epoch means accumulated on the device, logged once per epoch.

Each ``LightningModule.log`` call costs about as much as a training step of a small model, so
steps only add to a running mean here and the module logs the mean at epoch end. Adds are out of
place: Lightning runs a standalone ``validate()`` in inference mode but fit's validation under
``no_grad``, and an in-place add to a tensor made in the other mode is an error.
"""

from __future__ import annotations

import torch

__all__ = ["RunningMean"]


class RunningMean:
    """Weighted mean of per-step values: ``sum(value * weight) / sum(weight)``."""

    def __init__(self) -> None:
        self._total: torch.Tensor | None = None
        self._weight = 0

    def update(self, value: torch.Tensor, weight: int = 1) -> None:
        """Add one step's value (a batch mean) with its weight (the batch size); no device sync."""
        contribution = value.detach() * weight
        self._total = contribution if self._total is None else self._total + contribution
        self._weight += weight

    @property
    def empty(self) -> bool:
        """Whether nothing was added since the last reset."""
        return self._total is None

    def compute(self) -> torch.Tensor:
        """The weighted mean.

        Raises:
            ValueError: Nothing was added since the last reset.
        """
        if self._total is None:
            raise ValueError("RunningMean.compute() before any update()")
        return self._total / self._weight

    def reset(self) -> None:
        """Forget every value; the next ``update`` starts a new mean."""
        self._total = None
        self._weight = 0
