"""Trials made but never claimed are failed, so they cannot hold the budget for good."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from trainer.budget import _new_trial
from trainer.unclaimed import UNCLAIMED_REASON, UnclaimedTrials


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _storage(tmp_path: Path) -> tuple[RDBStorage, int]:
    storage = RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=60)
    optuna.create_study(study_name="s", storage=storage)
    return storage, storage.get_study_id_from_name("s")


def test_a_trial_without_heartbeat_is_failed_once_seen_so_for_the_grace_period(
    tmp_path: Path,
) -> None:
    storage, study_id = _storage(tmp_path)
    orphan = storage.create_new_trial(study_id)
    claimed = storage.create_new_trial(study_id)
    storage.record_heartbeat(claimed)
    clock = Clock()
    reaper = UnclaimedTrials(storage, study_id, grace_s=30, clock=clock)
    assert reaper.reap() == []  # first seen now, whatever its start time says
    clock.now += 29
    assert reaper.reap() == []
    clock.now += 1
    assert reaper.reap() == [orphan]
    assert storage.get_trial(orphan).state is TrialState.FAIL
    assert storage.get_trial_user_attrs(orphan)["fail_reason"] == UNCLAIMED_REASON
    assert storage.get_trial(claimed).state is TrialState.RUNNING
    clock.now += 60
    assert reaper.reap() == []  # failed once


def test_a_trial_claimed_or_ended_meanwhile_is_left_alone(tmp_path: Path) -> None:
    storage, study_id = _storage(tmp_path)
    late, ended = storage.create_new_trial(study_id), storage.create_new_trial(study_id)
    clock = Clock()
    reaper = UnclaimedTrials(storage, study_id, grace_s=30, clock=clock)
    assert reaper.reap() == []
    storage.record_heartbeat(late)
    storage.set_trial_state_values(ended, TrialState.COMPLETE, [1.0])
    clock.now += 60
    assert reaper.reap() == []
    assert storage.get_trial(late).state is TrialState.RUNNING


class RaisingSampler(optuna.samplers.RandomSampler):
    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        raise ValueError("expected non-negative integer")


def test_a_trial_whose_sampler_raises_as_it_is_made_is_failed_with_why(tmp_path: Path) -> None:
    storage, _ = _storage(tmp_path)
    study = optuna.load_study(study_name="s", storage=storage, sampler=RaisingSampler())
    with pytest.raises(ValueError, match="non-negative"):
        _new_trial(study)
    (trial,) = study.get_trials()
    assert trial.state is TrialState.FAIL
    reason = "ValueError as the trial was made: expected non-negative integer"
    assert trial.user_attrs["fail_reason"] == reason
