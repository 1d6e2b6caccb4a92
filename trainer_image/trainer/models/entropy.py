"""An MLP that predicts a probability vector's entropy: a regression, trained with MSE."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.epoch_logging import EpochMeansModule
from trainer.models.mlp import ACTIVATIONS

__all__ = ["EntropyPredictor"]

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class EntropyPredictor(EpochMeansModule):
    """``depth`` hidden layers of ``hidden_dim`` units, one output: the predicted entropy.

    Logs ``train_loss`` (MSE) per epoch, ``val_loss``/``val_mae`` per validation and
    ``test_loss``/``test_mae`` after fit, each once per epoch from running means.

    Args:
        input_dim: Values per probability vector (the data's ``dim``).
        hidden_dim: Units per hidden layer.
        depth: Hidden layers (>= 1).
        dropout: Drop probability after each hidden layer, in [0, 1).
        activation: One of ``trainer.models.mlp.ACTIVATIONS``.
        optimizer: Factory taking the parameters (Hydra ``_partial_``).

    Raises:
        ValueError: A size out of range or an unknown activation.
    """

    def __init__(
        self,
        *,
        input_dim: int,
        hidden_dim: int,
        depth: int,
        dropout: float,
        activation: str,
        optimizer: OptimizerFactory,
    ) -> None:
        super().__init__(("train_loss", "val_loss", "val_mae", "test_loss", "test_mae"))
        if input_dim < 1 or hidden_dim < 1 or depth < 1:
            raise ValueError(
                "`model.input_dim`, `model.hidden_dim` and `model.depth` must be >= 1, got "
                f"{input_dim}, {hidden_dim}, {depth}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`model.dropout` must lie in [0, 1), got {dropout}.")
        if activation not in ACTIVATIONS:
            choices = ", ".join(sorted(ACTIVATIONS))
            raise ValueError(f"`model.activation` must be one of: {choices}; got {activation!r}.")
        self.save_hyperparameters(ignore=["optimizer"])
        layers: list[nn.Module] = []
        width = input_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_dim), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = hidden_dim
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.optimizer_factory = optimizer

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        """Predicted entropy per vector."""
        return self.net(probs).squeeze(-1)  # type: ignore[no-any-return]

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        """MSE of one batch."""
        probs, target = batch
        loss = F.mse_loss(self(probs), target)
        self.epoch_means["train_loss"].update(loss.detach(), weight=len(target))
        return loss

    def configure_optimizers(self) -> Any:
        """The configured optimizer."""
        return self.optimizer_factory(self.parameters())

    def _update_eval(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        probs, target = batch
        predicted = self(probs)
        self.epoch_means[f"{stage}_loss"].update(F.mse_loss(predicted, target), weight=len(target))
        mae = (predicted - target).abs().mean()
        self.epoch_means[f"{stage}_mae"].update(mae, weight=len(target))
