"""SIGTERM is a request honoured at safe points: a stopped trial is FAIL with its reason."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy.exc import OperationalError
from trainer import fit
from trainer.stopping import StopOnRequest, StopRequest, WorkerStopped

from tests.conftest import ComposeFn
from tests.trial_loops import make_loop, reserve


@pytest.fixture
def restore_sigterm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_only_records_the_request(restore_sigterm: None) -> None:
    stop = StopRequest()
    stop.install()
    assert not stop.is_set()
    os.kill(os.getpid(), signal.SIGTERM)  # would kill pytest if the handler were not ours
    assert stop.is_set()
    with pytest.raises(WorkerStopped):
        stop.check()


@pytest.mark.parametrize("when", ["before the trial starts", "during the trial"])
def test_stopped_trial_is_failed_with_its_reason(tmp_path: Path, when: str) -> None:
    stop = StopRequest()
    ran: list[int] = []

    def objective(trial: optuna.Trial) -> list[float]:
        ran.append(trial.number)
        stop.set()
        stop.check()
        return [1.0]

    loop, study = make_loop(tmp_path, objective, stop)
    if when == "before the trial starts":
        stop.set()
    with pytest.raises(WorkerStopped):
        loop.run_one(reserve(loop))
    (trial,) = study.get_trials()
    assert trial.state is TrialState.FAIL
    assert trial.user_attrs == {"fail_reason": "worker stopped (SIGTERM)"}
    assert ran == ([] if when == "before the trial starts" else [0])


def test_an_objectives_own_errors_are_not_mistaken_for_a_stop(tmp_path: Path) -> None:
    def objective(trial: optuna.Trial) -> list[float]:
        raise RuntimeError("diverged")

    loop, study = make_loop(tmp_path, objective, StopRequest())
    loop.run_one(reserve(loop))
    (trial,) = study.get_trials()
    assert trial.state is TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "RuntimeError: diverged"


class _GateOfADatabaseThatWentAway:
    """A budget gate whose database is down; SIGTERM comes while the worker waits for it."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop
        self.tries = 0

    def reserve(self, study: optuna.Study, labels: object) -> object:
        self.tries += 1
        self.stop.set()
        shutdown = Exception("terminating connection due to administrator command")
        raise OperationalError("SELECT pg_advisory_xact_lock", {}, shutdown)


def test_a_stop_during_an_outage_between_trials_ends_the_worker_at_once(tmp_path: Path) -> None:
    stop = StopRequest()
    loop, study = make_loop(tmp_path, lambda trial: [1.0], stop)
    gate = _GateOfADatabaseThatWentAway(stop)
    with pytest.raises(WorkerStopped):
        loop.pull(gate)  # type: ignore[arg-type]
    assert gate.tries == 1  # not retried for `--db-outage` seconds
    assert study.get_trials() == []


@pytest.mark.slow
def test_fit_ends_at_the_first_batch_once_stop_is_requested(compose_in: ComposeFn) -> None:
    stop = StopRequest()
    stop.set()
    cfg = compose_in(overrides=("trainer.max_epochs=1000",))
    parts = fit.build(cfg, [StopOnRequest(stop)])
    with pytest.raises(WorkerStopped):
        parts.trainer.fit(parts.model, datamodule=parts.datamodule)
    assert parts.trainer.global_step == 1
