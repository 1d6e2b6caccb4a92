"""scikit-learn's handwritten digits as a LightningDataModule, held in memory as tensors.

The whole data set is 1,797 rows of 64 features, so batches are sliced from tensors with one
indexing operation each (a ``BatchSampler`` over a ``TensorDataset``) instead of collating items
one by one: on a model this small, per-item collation costs more than the forward pass.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

__all__ = ["DigitsDataModule"]


class DigitsDataModule(L.LightningDataModule):
    """Seeded, stratified train/val/test split of the digits, standardised on the train split only.

    Args:
        val_fraction: Share of all rows held out for validation.
        test_fraction: Share of all rows held out for the final test.
        batch_size: Rows per training batch.
        eval_batch_size: Rows per validation and test batch. Evaluation keeps no activations
            for a backward pass, so it can take whole splits at once; each batch is a round of
            Lightning's per-step hooks, which on a model this small cost more than the batch.
        split_seed: Seed of the split, so every trial of a study sees the same split.
        num_workers: DataLoader worker processes; 0 is fastest for in-memory tensors.

    Raises:
        ValueError: The fractions do not leave a non-empty train split, or a size is not positive.
    """

    def __init__(
        self,
        val_fraction: float,
        test_fraction: float,
        batch_size: int,
        split_seed: int,
        *,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if not (
            0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1
        ):
            raise ValueError(
                "`data.val_fraction` and `data.test_fraction` must each lie in (0, 1) and sum to "
                f"less than 1, got {val_fraction} and {test_fraction}."
            )
        if batch_size < 1:
            raise ValueError(f"`data.batch_size` must be >= 1, got {batch_size}.")
        if eval_batch_size is not None and eval_batch_size < 1:
            raise ValueError(f"`data.eval_batch_size` must be >= 1 or null, got {eval_batch_size}.")
        self.save_hyperparameters(logger=False)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """Load, split and standardise once; later calls (fit, then test) reuse the tensors."""
        if self.splits:
            return
        features, labels = load_digits(return_X_y=True)
        rows = np.arange(len(labels))
        rest, test = train_test_split(
            rows, test_size=self.test_fraction, stratify=labels, random_state=self.split_seed
        )
        val_share_of_rest = self.val_fraction / (1.0 - self.test_fraction)
        train, val = train_test_split(
            rest, test_size=val_share_of_rest, stratify=labels[rest], random_state=self.split_seed
        )
        scaler = StandardScaler().fit(features[train])
        for name, index in (("train", train), ("val", val), ("test", test)):
            x = torch.from_numpy(scaler.transform(features[index])).float()
            y = torch.from_numpy(labels[index]).long()
            self.splits[name] = TensorDataset(x, y)

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Shuffled batches; the order follows torch's global seed (set by ``seed_everything``)."""
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Validation batches in a fixed order."""
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Test batches in a fixed order."""
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def _loader(
        self, split: str, batch_size: int, shuffle: bool
    ) -> DataLoader[tuple[torch.Tensor, ...]]:
        dataset = self.splits[split]
        order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        batches = BatchSampler(order, batch_size=batch_size, drop_last=False)
        # batch_size=None: the sampler yields whole index lists and TensorDataset slices them.
        return DataLoader(dataset, sampler=batches, batch_size=None, num_workers=self.num_workers)
