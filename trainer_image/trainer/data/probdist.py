"""Random probability vectors and their entropy, computed in ``__getitem__`` by the C++ kernel.

An experiment whose data preparation is real work per item: each item draws a Dirichlet vector
(seeded by its index, so item i is the same in every epoch, worker and run) and computes its
Shannon entropy with ``trainer.entropy``. The model learns to predict that entropy.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from trainer.entropy import entropy

__all__ = ["ProbDistDataModule", "ProbDistributionDataset"]


class ProbDistributionDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Item i: a Dirichlet(concentration) vector of ``dim`` values, and its entropy in nats.

    Args:
        size: Number of items.
        dim: Values per vector.
        concentration: The Dirichlet's parameter, the same for every value (1: uniform over the
            simplex; small: peaked vectors, low entropy; large: near-uniform, high entropy).
        seed: With the index, seeds each item's draw.

    Raises:
        ValueError: A size, dimension or concentration out of range.
    """

    def __init__(self, size: int, dim: int, concentration: float, seed: int) -> None:
        if size < 1 or dim < 2:
            raise ValueError(f"`data.size` must be >= 1 and `data.dim` >= 2, got {size}, {dim}.")
        if not concentration > 0:
            raise ValueError(f"`data.concentration` must be > 0, got {concentration}.")
        self.size = size
        self.alpha = np.full(dim, concentration)
        self.seed = seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The vector (float32) and its entropy (float32 scalar)."""
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} items")
        probs = np.random.default_rng((self.seed, index)).dirichlet(self.alpha)
        target = entropy(probs, normalize=True)  # the draw sums to 1 up to rounding
        return torch.from_numpy(probs.astype(np.float32)), torch.tensor(target, dtype=torch.float32)


class ProbDistDataModule(L.LightningDataModule):
    """Train/val/test items of one ``ProbDistributionDataset``, split by index ranges.

    Args:
        size: Items in all splits together.
        dim: Values per vector.
        concentration: The Dirichlet's parameter.
        val_fraction: Share of the items held out for validation.
        test_fraction: Share held out for the final test.
        batch_size: Items per batch.
        seed: Seeds every item's draw.
        num_workers: DataLoader worker processes (items are computed in ``__getitem__``).

    Raises:
        ValueError: Fractions that leave no training items, or a size out of range.
    """

    def __init__(
        self,
        *,
        size: int,
        dim: int,
        concentration: float,
        val_fraction: float,
        test_fraction: float,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
            raise ValueError(
                "`data.val_fraction` and `data.test_fraction` must be > 0 and sum to less than "
                f"1, got {val_fraction} and {test_fraction}."
            )
        if batch_size < 1:
            raise ValueError(f"`data.batch_size` must be >= 1, got {batch_size}.")
        self.save_hyperparameters(logger=False)
        self.dataset = ProbDistributionDataset(size, dim, concentration, seed)
        n_val, n_test = int(size * val_fraction), int(size * test_fraction)
        n_train = size - n_val - n_test
        self.ranges = {
            "train": range(0, n_train),
            "val": range(n_train, n_train + n_val),
            "test": range(n_train + n_val, size),
        }
        self.batch_size = batch_size
        self.num_workers = num_workers

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled batches (order from torch's global seed)."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """Validation batches in a fixed order."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """Test batches in a fixed order."""
        return self._loader("test", shuffle=False)

    def _loader(self, split: str, shuffle: bool) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        subset = torch.utils.data.Subset(self.dataset, list(self.ranges[split]))
        return DataLoader(
            subset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers
        )
