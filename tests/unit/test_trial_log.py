"""Each trial a worker runs ends with one line in its log: what ``hpo logs`` shows a user."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from trainer.errors import ConfigError
from trainer.stopping import StopRequest

from tests.trial_loops import make_loop, reserve


def _complete(trial: optuna.Trial) -> list[float]:
    return [trial.suggest_float("lr", 0.5, 0.5) * 2]


def _pruned(trial: optuna.Trial) -> list[float]:
    trial.suggest_int("depth", 3, 3)
    raise optuna.TrialPruned


def _failed(trial: optuna.Trial) -> list[float]:
    raise RuntimeError("diverged")


def _nan(trial: optuna.Trial) -> list[float]:
    return [float("nan")]  # a diverged fit: Optuna refuses the value


def _refused(trial: optuna.Trial) -> list[float]:
    raise ConfigError("`trainer`: `max_epochs` must be a non-negative integer or -1.")


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        (_complete, r"trial 0 COMPLETE in \d+\.\d s, values \[1\.0\]; parameters \{'lr': 0\.5\}$"),
        (_pruned, r"trial 0 PRUNED in \d+\.\d s; parameters \{'depth': 3\}$"),
        (_failed, r"trial 0 FAIL in \d+\.\d s; parameters \{\}$"),
        (_nan, r"trial 0 FAIL in \d+\.\d s; parameters \{\}$"),
    ],
)
def test_a_finished_trial_logs_its_state_time_values_and_params(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, objective: object, expected: str
) -> None:
    loop, _ = make_loop(tmp_path, objective, StopRequest())
    with caplog.at_level(logging.INFO, logger="trainer.worker"):
        loop.run_one(reserve(loop))
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if re.fullmatch(expected, m)]) == 1, messages


@pytest.mark.parametrize(
    ("objective", "trials", "reason"),
    [
        (_failed, 2, "RuntimeError: diverged"),
        (_nan, 1, "nan is not acceptable"),
        (_refused, 1, "ConfigError: `trainer`: `max_epochs` must be"),
    ],
)
def test_a_failure_the_same_params_would_repeat_is_not_retried(
    tmp_path: Path, objective: object, trials: int, reason: str
) -> None:
    loop, study = make_loop(tmp_path, objective, StopRequest(), max_retry=1)
    loop.run_one(reserve(loop))
    first, *retries = study.get_trials()
    assert first.state is TrialState.FAIL
    assert len(retries) == trials - 1  # an error is retried; NaN or a refused config would repeat
    assert reason in first.user_attrs["fail_reason"]


def _failed_by_a_peer(trial: optuna.Trial) -> None:
    """What a peer or launcher does to a trial whose heartbeat lapsed (a database outage)."""
    trial.storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _late_tell(trial: optuna.Trial) -> list[float]:
    _failed_by_a_peer(trial)
    return [0.9]


def _late_report(trial: optuna.Trial) -> list[float]:
    _failed_by_a_peer(trial)
    trial.report(0.5, step=1)  # the next epoch's report, once the database is back
    return [0.9]


@pytest.mark.parametrize("objective", [_late_tell, _late_report])
def test_a_trial_failed_by_a_peer_meanwhile_is_logged_not_retried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, objective: object
) -> None:
    loop, study = make_loop(tmp_path, objective, StopRequest(), max_retry=1)
    with caplog.at_level(logging.INFO, logger="trainer.worker"):
        loop.run_one(reserve(loop))  # returns: the worker goes on with its next trial
    (trial,) = study.get_trials()  # the peer that failed it retries it, not this worker
    assert trial.state is TrialState.FAIL
    assert "fail_reason" not in trial.user_attrs
    worker_lines = [r.getMessage() for r in caplog.records if r.name == "trainer.worker"]
    assert worker_lines == [  # no traceback, no "trial 0 failed"
        "trial 0 was already finished elsewhere (failed after a missed heartbeat?); "
        "its result is dropped"
    ]
