"""The report's figures for a study with nothing complete yet: no empty charts, no Optuna noise."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator.report._figures import CURVES, figures
from orchestrator.report._png import write_pngs


@pytest.fixture
def optuna_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Optuna's log records (its logger does not propagate by default)."""
    optuna.logging.enable_propagation()
    with caplog.at_level(logging.WARNING, logger="optuna"):
        yield caplog
    optuna.logging.disable_propagation()


def _failed_study() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for _ in range(2):
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
        study.tell(trial, state=TrialState.FAIL)
    return study


def test_a_study_without_complete_trials_draws_no_empty_charts_and_logs_nothing(
    tmp_path: Path, optuna_logs: pytest.LogCaptureFixture
) -> None:
    study = _failed_study()
    stale = tmp_path / "optimization-history.png"  # from a report when trials had completed
    stale.write_bytes(b"png")

    drawn = figures(study, [], tmp_path)
    written = write_pngs(study, list(drawn), [], tmp_path, tmp_path)

    assert "optimization history" not in drawn
    assert CURVES in drawn
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(p.name for p in written)
    assert not stale.exists()
    assert [r.getMessage() for r in optuna_logs.records] == []
