"""Every experiment in conf/ composes, and its DataModule and LightningModule instantiate."""

from __future__ import annotations

import lightning as L
import pytest
from hydra.utils import instantiate
from trainer import experiment, fit

from tests.conftest import ComposeFn


@pytest.mark.parametrize("name", experiment.list_experiments())
def test_experiment_instantiates(name: str, compose_in: ComposeFn) -> None:
    cfg = compose_in(name)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    assert isinstance(datamodule, L.LightningDataModule)
    assert isinstance(model, L.LightningModule)
    datamodule.setup("fit")
    features, _ = next(iter(datamodule.train_dataloader()))
    assert model(features).shape[0] == len(features)  # one prediction (or row of logits) each


@pytest.mark.parametrize("name", experiment.list_experiments())
def test_experiment_builds_a_trainer(name: str, compose_in: ComposeFn) -> None:
    parts = fit.build(compose_in(name))
    assert isinstance(parts.trainer, L.Trainer)
    assert parts.trainer.max_epochs == compose_in(name).trainer.max_epochs


def test_wandb_logger_composes_offline(
    compose_in: ComposeFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_in(overrides=("logger=wandb",))
    assert cfg.logger.wandb.offline is True
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert cfg.logger.wandb.offline is False
