"""A worker's trial loop on a throwaway SQLite study, for unit tests of one trial's life."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from trainer.budget import Reservation
from trainer.retries import RetryAsNewAttempt
from trainer.spec import Resilience
from trainer.stopping import StopRequest
from trainer.trial_loop import TrialLoop


def reserve(loop: TrialLoop) -> Reservation:
    """A trial as the budget gate hands it out (the gate itself needs Postgres)."""
    trial = loop.study.ask()
    trial_id = loop.storage.get_trial_id_from_study_id_trial_number(loop.study_id, trial.number)
    return Reservation(trial=trial, trial_id=trial_id)


def make_loop(
    tmp_path: Path, objective: object, stop: StopRequest, max_retry: int = 0
) -> tuple[TrialLoop, optuna.Study]:
    storage = RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    study_id = storage.get_study_id_from_name("s")
    retry = RetryAsNewAttempt(max_retry=max_retry)
    resilience = Resilience(heartbeat_s=60, grace_s=120)
    loop = TrialLoop(study, storage, study_id, objective, resilience, 3, retry, stop)  # type: ignore[arg-type]
    return loop, study
