"""A real training run: the model learns, and its curves are written where the config says."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from trainer import fit

from tests.conftest import ComposeFn


def _read_curves(output_dir: Path) -> list[dict[str, str]]:
    with (output_dir / "csv" / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_model_learns_and_writes_curves(compose_in: ComposeFn, tmp_path: Path) -> None:
    cfg = compose_in(overrides=("trainer.max_epochs=5",))
    parts = fit.build(cfg)
    (before,) = parts.trainer.validate(parts.model, datamodule=parts.datamodule, verbose=False)
    parts.trainer.fit(parts.model, datamodule=parts.datamodule)
    (after,) = parts.trainer.validate(parts.model, datamodule=parts.datamodule, verbose=False)
    assert after["val_loss"] < 0.5 * before["val_loss"]

    rows = _read_curves(tmp_path)
    train_epochs = {row["epoch"] for row in rows if row.get("train_loss")}
    val_epochs = {row["epoch"] for row in rows if row.get("val_loss")}
    assert train_epochs >= {str(epoch) for epoch in range(5)}
    assert val_epochs >= {str(epoch) for epoch in range(5)}


@pytest.mark.slow
def test_run_returns_train_val_and_test_metrics(compose_in: ComposeFn) -> None:
    metrics = fit.run(compose_in(overrides=("trainer.max_epochs=2",)))
    assert set(metrics) >= {"train_loss", "val_loss", "val_acc", "test_loss", "test_acc", "epochs"}
    assert metrics["epochs"] == 2
    assert 0.0 <= metrics["val_acc"] <= 1.0


@pytest.mark.slow
def test_seed_makes_runs_repeatable(compose_in: ComposeFn, tmp_path: Path) -> None:
    first, second = (
        fit.run(compose_in(overrides=("trainer.max_epochs=2", f"paths.output_dir={tmp_path / n}")))
        for n in ("first", "second")
    )
    assert first["val_loss"] == second["val_loss"]


@pytest.mark.slow
def test_default_digits_run_reaches_95_percent(tmp_path: Path) -> None:
    """The README's single run, as a user types it, on its default config."""
    command = [sys.executable, "-m", "trainer.train", "experiment=digits_mlp", "threads=1"]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=300, check=True
    )
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["epochs"] <= 20
    assert metrics["val_acc"] >= 0.95
    (run_dir,) = (tmp_path / "outputs" / "digits_mlp").iterdir()
    rows = _read_curves(run_dir)
    assert len({row["epoch"] for row in rows if row.get("val_acc")}) == metrics["epochs"]


def test_a_trainer_without_a_configured_profiler_gets_the_unprofiled_one(
    compose_in: ComposeFn,
) -> None:
    trainer = fit.build(compose_in()).trainer
    assert isinstance(trainer.profiler, fit.Unprofiled)
    with trainer.profiler.profile("a hook") as inside:
        assert inside is None
    assert trainer.profiler.profile("a hook") is trainer.profiler.profile("another")


def test_a_configured_profiler_is_kept(compose_in: ComposeFn) -> None:
    from lightning.pytorch.profilers import SimpleProfiler

    trainer = fit.build(compose_in(overrides=("+trainer.profiler=simple",))).trainer
    assert isinstance(trainer.profiler, SimpleProfiler)
