"""The buffered CSV logger: fewer writes while a stage runs, every row once it ends."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import pytest
from trainer import fit
from trainer.loggers import BufferedCSVLogger

from tests.conftest import ComposeFn


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def test_rows_wait_for_the_clock_then_all_come_at_the_end(tmp_path: Path) -> None:
    logger = BufferedCSVLogger(save_dir=tmp_path, name="csv", version="", flush_every_s=3600)
    for step in range(3):
        logger.log_metrics({"val_loss": 1.0 / (step + 1)}, step=step)
        logger.save()  # what Lightning's connector does after each log_metrics
    assert _rows(Path(logger.experiment.metrics_file_path)) == []
    logger.finalize("success")
    rows = _rows(Path(logger.experiment.metrics_file_path))
    assert [row["step"] for row in rows] == ["0", "1", "2"]


def test_zero_seconds_writes_at_every_save(tmp_path: Path) -> None:
    logger = BufferedCSVLogger(save_dir=tmp_path, name="csv", version="", flush_every_s=0)
    logger.log_metrics({"val_loss": 0.5}, step=0)
    logger.save()
    assert len(_rows(Path(logger.experiment.metrics_file_path))) == 1


def test_a_negative_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flush_every_s"):
        BufferedCSVLogger(save_dir=tmp_path, flush_every_s=-1)


class _FailAtEpoch(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("the fit broke")


@pytest.mark.slow
def test_a_fit_that_fails_still_writes_the_epochs_it_ran(
    compose_in: ComposeFn, tmp_path: Path
) -> None:
    cfg = compose_in(overrides=("trainer.max_epochs=5", "logger.csv.flush_every_s=3600"))
    with pytest.raises(RuntimeError, match="the fit broke"):
        fit.run(cfg, callbacks=[_FailAtEpoch(3)])
    rows = _rows(tmp_path / "csv" / "metrics.csv")
    assert {row["epoch"] for row in rows if row.get("val_loss")} == {"0", "1", "2"}
