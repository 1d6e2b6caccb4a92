"""A small convolutional network for the 8x8 digits, written as any LightningModule is.

hpo asks two things of a model: it is built from config (``_target_`` plus keyword arguments),
and it logs the metric the experiment optimises (here ``val_acc``) once per validation.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIDE = 8  # the digits' 64 features are an 8x8 image


class DigitsCNN(L.LightningModule):
    """Two 3x3 convolutions with a 2x2 max-pool between them, then one linear layer.

    Args:
        channels: Filters in the first convolution; the second has twice as many.
        dropout: Drop probability before the classifier.
        lr: Adam's learning rate.
        num_classes: Output classes.
    """

    def __init__(self, channels: int, dropout: float, lr: float, num_classes: int = 10) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dropout(dropout),
        )
        pooled_side = IMAGE_SIDE // 2
        self.classifier = nn.Linear(2 * channels * pooled_side**2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of a batch of flattened 8x8 images."""
        images = x.view(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        return self.classifier(self.features(images))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        """Cross-entropy of one batch, logged as the epoch's mean."""
        features, labels = batch
        loss = F.cross_entropy(self(features), labels)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """``val_loss`` and ``val_acc``: the experiment optimises ``val_acc``."""
        self._evaluate("val", batch)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """``test_loss`` and ``test_acc`` after the fit."""
        self._evaluate("test", batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam with the searched learning rate."""
        return torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])

    def _evaluate(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        features, labels = batch
        logits = self(features)
        self.log(f"{stage}_loss", F.cross_entropy(logits, labels))
        self.log(f"{stage}_acc", (logits.argmax(dim=1) == labels).float().mean())
