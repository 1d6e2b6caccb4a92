"""The digits DataModule and the MLP, built directly from their config."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from trainer.data.digits import DigitsDataModule
from trainer.models.metrics import RunningMean
from trainer.models.mlp import MLPClassifier

from tests.conftest import ComposeFn


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    module = DigitsDataModule(val_fraction=0.2, test_fraction=0.2, batch_size=64, split_seed=7)
    module.setup()
    return module


def test_split_covers_every_row_once(digits: DigitsDataModule) -> None:
    sizes = {name: len(split) for name, split in digits.splits.items()}
    assert sum(sizes.values()) == 1797
    assert sizes["val"] == pytest.approx(0.2 * 1797, abs=2)
    assert sizes["test"] == pytest.approx(0.2 * 1797, abs=2)


def test_split_is_seeded() -> None:
    first = DigitsDataModule(0.2, 0.2, 64, split_seed=7)
    second = DigitsDataModule(0.2, 0.2, 64, split_seed=7)
    other = DigitsDataModule(0.2, 0.2, 64, split_seed=8)
    for module in (first, second, other):
        module.setup()
    assert torch.equal(first.splits["val"].tensors[0], second.splits["val"].tensors[0])
    assert not torch.equal(first.splits["val"].tensors[0], other.splits["val"].tensors[0])


def test_standardised_on_train_only(digits: DigitsDataModule) -> None:
    train = digits.splits["train"].tensors[0]
    val = digits.splits["val"].tensors[0]
    informative = train.std(dim=0) > 0
    assert train.mean(dim=0).abs().max() < 1e-5
    # Fitted on train alone, the val split's means are near, but not exactly, zero.
    assert val[:, informative].mean(dim=0).abs().max() > 1e-3


def test_batches_are_sliced_whole(digits: DigitsDataModule) -> None:
    features, labels = next(iter(digits.train_dataloader()))
    assert features.shape == (64, 64)
    assert labels.shape == (64,)
    total = sum(len(batch[1]) for batch in digits.val_dataloader())
    assert total == len(digits.splits["val"])


def test_evaluation_batches_have_their_own_size() -> None:
    module = DigitsDataModule(0.2, 0.2, batch_size=64, split_seed=7, eval_batch_size=1024)
    module.setup()
    for split, loader in (("val", module.val_dataloader()), ("test", module.test_dataloader())):
        batches = list(loader)
        assert len(batches) == 1
        assert len(batches[0][1]) == len(module.splits[split])
    assert len(next(iter(module.train_dataloader()))[1]) == 64


@pytest.mark.parametrize(
    "bad",
    [{"val_fraction": 0.0}, {"test_fraction": 0.9}, {"batch_size": 0}, {"eval_batch_size": 0}],
)
def test_datamodule_rejects_bad_sizes(bad: dict[str, float]) -> None:
    args: dict[str, float] = {"val_fraction": 0.2, "test_fraction": 0.2, "batch_size": 64}
    with pytest.raises(ValueError, match="data"):
        DigitsDataModule(**{**args, **bad}, split_seed=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_mlp_depth_and_logits(compose_in: ComposeFn, depth: int) -> None:
    model = instantiate(compose_in(overrides=(f"model.depth={depth}",)).model)
    assert isinstance(model, MLPClassifier)
    linear_layers = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    assert len(linear_layers) == depth + 1
    assert model(torch.zeros(5, 64)).shape == (5, 10)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.activation=swish", "activation"),
        ("model.dropout=1.0", "dropout"),
        ("model.hidden_dim=0", "hidden_dim"),
        ("model.depth=-1", "depth"),
    ],
)
def test_mlp_rejects_bad_settings(compose_in: ComposeFn, override: str, message: str) -> None:
    with pytest.raises(Exception, match=message):
        instantiate(compose_in(overrides=(override,)).model)


def test_optimizer_and_scheduler_from_config(compose_in: ComposeFn) -> None:
    cfg = compose_in(overrides=("model/optimizer=sgd", "model/scheduler=cosine"))
    model = instantiate(cfg.model)
    configured = model.configure_optimizers()
    assert isinstance(configured["optimizer"], torch.optim.SGD)
    scheduler = configured["lr_scheduler"]["scheduler"]
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
    assert scheduler.T_max == cfg.trainer.max_epochs


def test_running_mean_is_weighted_and_resets() -> None:
    mean = RunningMean()
    assert mean.empty
    mean.update(torch.tensor(1.0), weight=1)
    mean.update(torch.tensor(4.0), weight=3)
    assert float(mean.compute()) == pytest.approx(13 / 4)
    mean.reset()
    assert mean.empty
    with pytest.raises(ValueError, match="before any update"):
        mean.compute()


def test_running_mean_mixes_inference_and_grad_modes() -> None:
    """Lightning's standalone validate() runs in inference mode, fit's validation under no_grad."""
    mean = RunningMean()
    with torch.inference_mode():
        mean.update(torch.tensor(2.0))
    with torch.no_grad():
        mean.update(torch.tensor(4.0))
    assert float(mean.compute()) == pytest.approx(3.0)
