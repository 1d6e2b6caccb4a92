"""A multi-layer perceptron classifier whose every size and setting comes from config."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models.epoch_logging import EpochMeansModule

__all__ = ["ACTIVATIONS", "MLPClassifier"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


class MLPClassifier(EpochMeansModule):
    """``depth`` hidden layers of ``hidden_dim`` units, each followed by activation and dropout.

    Logs ``train_loss`` per epoch, ``val_loss``/``val_acc`` per validation and
    ``test_loss``/``test_acc`` after fit: the names the configs' ``optimized_metric`` refers to.
    Steps only update running means (``RunningMean``); each metric is handed to ``self.log``
    once per epoch, because every ``self.log`` call costs about as much as a training step here.

    Args:
        input_dim: Features per example.
        num_classes: Output classes.
        hidden_dim: Units per hidden layer.
        depth: Hidden layers; 0 gives a linear (softmax regression) model.
        dropout: Drop probability after each hidden layer, in [0, 1).
        activation: One of ``ACTIVATIONS``.
        optimizer: Factory taking the parameters (Hydra ``_partial_``), e.g. AdamW with its lr.
        scheduler: Optional factory taking the optimizer, stepped once per epoch.

    Raises:
        ValueError: A size out of range or an unknown activation.
    """

    def __init__(
        self,
        *,
        input_dim: int,
        num_classes: int,
        hidden_dim: int,
        depth: int,
        dropout: float,
        activation: str,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(("train_loss", "val_loss", "val_acc", "test_loss", "test_acc"))
        _check_sizes(input_dim=input_dim, num_classes=num_classes, hidden_dim=hidden_dim)
        if depth < 0:
            raise ValueError(f"`model.depth` must be >= 0, got {depth}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`model.dropout` must lie in [0, 1), got {dropout}.")
        if activation not in ACTIVATIONS:
            choices = ", ".join(sorted(ACTIVATIONS))
            raise ValueError(f"`model.activation` must be one of: {choices}; got {activation!r}.")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        layers: list[nn.Module] = []
        width = input_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_dim), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = hidden_dim
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        """Cross-entropy of one batch; accuracy is an eval metric, and its ops cost ~1-2 % here."""
        features, labels = batch
        loss = F.cross_entropy(self(features), labels)
        self.epoch_means["train_loss"].update(loss.detach(), weight=len(labels))
        return loss

    def configure_optimizers(self) -> Any:
        """The configured optimizer, with the scheduler stepped per epoch when one is set."""
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    def _update_eval(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        loss, hits = self._loss_and_hits(batch)
        self.epoch_means[f"{stage}_loss"].update(loss, weight=len(hits))
        self.epoch_means[f"{stage}_acc"].update(hits.mean(), weight=len(hits))

    def _loss_and_hits(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy of the batch, and 1.0/0.0 per example for a right/wrong class."""
        features, labels = batch
        logits = self(features)
        hits = (logits.argmax(dim=1) == labels).float()
        return F.cross_entropy(logits, labels), hits


def _check_sizes(**sizes: int) -> None:
    for name, size in sizes.items():
        if size < 1:
            raise ValueError(f"`model.{name}` must be >= 1, got {size}.")
