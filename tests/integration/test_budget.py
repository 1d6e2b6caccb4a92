"""The study's budget: exact under a race, kept across launches, and a resume past it runs nothing.

Against a real Postgres from `hpo db up` (a throw-away instance), with `--backend local` where a
launch is needed.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from trainer.budget import BudgetGate, Verdict
from trainer.spec import Budget, Resilience
from trainer.storage import open_storage
from trainer.unclaimed import UNCLAIMED_REASON

from orchestrator.study import build_spec, create_or_resume
from tests.integration.conftest import Database, local_launch, read_study, workers_left

pytestmark = pytest.mark.integration


def test_budget_race_eight_workers_exactly_ten(database: Database) -> None:
    """The budget gate itself, with an instant objective: 8 workers, budget 10, 20 times."""
    for attempt in range(20):
        name = f"race-{attempt}"
        spec = build_spec(
            "digits_mlp",
            [],
            budget=Budget(10),
            sampler="random",
            pruner="none",
            seed=attempt,
            resilience=Resilience(),
        )
        create_or_resume(database.url, name, spec, force=False)
        workers = [
            threading.Thread(target=_instant_worker, args=(database.url, name)) for _ in range(8)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        snapshot = read_study(database, name)
        assert snapshot.count(TrialState.COMPLETE) == 10, attempt
        assert len(snapshot.trials) == 10, attempt


def _instant_worker(url: str, name: str) -> None:
    storage = open_storage(url, name)
    try:
        _pull_until_done(storage, name)
    finally:
        storage.engine.dispose()


def _pull_until_done(storage: RDBStorage, name: str) -> None:
    sampler = optuna.samplers.RandomSampler()
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    gate = BudgetGate(storage.engine, storage.get_study_id_from_name(name), 10, 10, None)
    while True:
        reserved = gate.reserve(study)
        if reserved is Verdict.WAIT:
            time.sleep(0.01)
            continue
        if isinstance(reserved, Verdict):
            return
        study.tell(reserved.trial, reserved.trial.suggest_float("x", 0.0, 1.0))


def test_a_reserved_trial_is_labelled_and_beating_a_retry_relabelled(database: Database) -> None:
    """The gate's claim: labels as user attrs, a heartbeat row, and a retried trial (which
    inherits its original's attrs) takes the new worker's labels."""
    name = "claim"
    spec = build_spec(
        "digits_mlp", [], budget=Budget(5), sampler="random", pruner="none", seed=0,
        resilience=Resilience(),
    )  # fmt: skip
    create_or_resume(database.url, name, spec, force=False)
    storage = open_storage(database.url, name)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        study_id = storage.get_study_id_from_name(name)
        gate = BudgetGate(storage.engine, study_id, 5, 5, None)
        first = gate.reserve(study, {"worker": 0, "host": "h0"})
        assert not isinstance(first, Verdict)
        number = first.trial.number
        assert first.trial_id == storage.get_trial_id_from_study_id_trial_number(study_id, number)
        assert storage.get_trial_user_attrs(first.trial_id) == {"worker": 0, "host": "h0"}
        with storage.engine.connect() as connection:
            beats = connection.exec_driver_sql(
                f"SELECT count(*) FROM trial_heartbeats WHERE trial_id = {first.trial_id}"
            ).scalar_one()
        assert beats == 1
        study.tell(first.trial, state=TrialState.FAIL)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, study.trials[0])
        assert study.trials[1].user_attrs["worker"] == 0  # inherited: the claim must overwrite
        second = gate.reserve(study, {"worker": 1, "host": "h1"})
        assert not isinstance(second, Verdict)
        attrs = storage.get_trial_user_attrs(second.trial_id)
        assert (attrs["worker"], attrs["host"]) == (1, "h1")
        assert second.trial.number == 1
    finally:
        storage.engine.dispose()


def _ran_nothing(study: str, runs: Path) -> bool:
    """Whether the launch's workers, started while it readied the study, ran no trial and left."""
    log = runs / study / "worker-0.log"
    ran = log.exists() and "trial" in log.read_text()
    return not ran and not workers_left(study)


def test_a_resume_with_its_budget_reached_or_too_many_failures_runs_nothing(
    database: Database, tmp_path: Path
) -> None:
    quick = ["--workers", "1", "--heartbeat", "1", "--grace", "2", "trainer.max_epochs=1"]
    command = local_launch("done", tmp_path, "--trials", "1", *quick)
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    (tmp_path / "done" / "worker-0.log").unlink()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 trials finished, its budget of 1 is reached; nothing to run" in again.stdout
    assert _ran_nothing("done", tmp_path)
    assert len(read_study(database, "done").trials) == 1

    storage = open_storage(database.url, "done")
    study = optuna.load_study(study_name="done", storage=storage)
    for _ in range(3):
        study.tell(study.ask(), state=TrialState.FAIL)
    # A trial made but never claimed (its worker died in between): RUNNING, with no heartbeat.
    orphan = storage.get_trial(
        storage.create_new_trial(storage.get_study_id_from_name("done"))
    ).number
    storage.engine.dispose()
    more = local_launch("done", tmp_path, "--trials", "2", *quick)
    refused = subprocess.run(
        [*more, "--max-failed", "2"], capture_output=True, text=True, timeout=600, check=False
    )
    assert refused.returncode == 2
    assert "has 3 failed trials, more than `--max-failed` 2" in refused.stderr
    assert _ran_nothing("done", tmp_path)
    resumed = subprocess.run(  # the orphan filled the budget: it must be failed, not waited for
        [*more, "--max-failed", "5"], capture_output=True, text=True, timeout=120, check=False
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr  # the limit may change
    snapshot = read_study(database, "done")
    assert snapshot.count(TrialState.COMPLETE) == 2
    assert snapshot.count(TrialState.RUNNING) == 0
    reaped = snapshot.trials[orphan]
    assert reaped.state is TrialState.FAIL
    assert reaped.user_attrs["fail_reason"] == UNCLAIMED_REASON


def test_a_timeout_is_named_in_the_summary_and_a_resume_after_it_runs_nothing(
    database: Database, tmp_path: Path
) -> None:
    # The workers start after their imports (seconds): by then the 1 s timeout has passed.
    command = local_launch("late", tmp_path, "--trials", "5", "--workers", "1", "--timeout", "1")
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert "stopped: the study's --timeout passed at " in first.stdout, first.stdout + first.stderr
    (tmp_path / "late" / "worker-0.log").unlink()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "its `--timeout` of 1 s, counted from its start (" in again.stdout
    assert "has passed; nothing to run" in again.stdout
    assert _ran_nothing("late", tmp_path)
