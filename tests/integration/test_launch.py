"""`hpo launch --backend local` against a real Postgres from `hpo db up` (a throw-away instance)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from trainer.budget import BudgetGate, Verdict
from trainer.spec import Budget, Resilience
from trainer.storage import open_storage
from trainer.unclaimed import UNCLAIMED_REASON

from orchestrator import reading
from orchestrator.study import build_spec, create_or_resume
from tests.integration.conftest import (
    HPO,
    Database,
    held,
    read_study,
    wait_for_running_trial,
    wait_for_state,
)

pytestmark = pytest.mark.integration
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Trials that a fault test interrupts last ~5 s, well past the ~0.5 s it takes to see a running
# trial in the database: the fault then always lands mid-trial, never after the study ended.
LONG_TRIAL_EPOCHS = 200


def _launch(name: str, runs: Path, *args: str) -> list[str]:
    return [
        HPO,
        "launch",
        "--backend",
        "local",
        "--study",
        name,
        "--runs-dir",
        str(runs),
        "--seed",
        "1",
        *args,
    ]


def test_exact_budget_resume_pruning_and_no_password_anywhere(
    database: Database, tmp_path: Path
) -> None:
    outputs = []
    for budget in (12, 16, 20):
        command = _launch("exact", tmp_path, "--workers", "2", "--trials", str(budget))
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout + result.stderr)
        snapshot = read_study(database, "exact")
        assert snapshot.count(*FINISHED) == budget
        assert snapshot.count(TrialState.RUNNING) == 0

    finished = [t for t in snapshot.trials if t.state in FINISHED]
    assert {t.user_attrs["worker"] for t in finished} == {0, 1}
    assert {t.user_attrs["machine"] for t in finished} == {socket.gethostname()}
    assert all(t.params and t.intermediate_values for t in finished)
    assert snapshot.count(TrialState.PRUNED) >= 1
    complete = [t.value for t in finished if t.state is TrialState.COMPLETE]
    assert max(v for v in complete if v is not None) >= 0.97

    # The password is a unique random string: a canary for every place it must not reach.
    logs = [p.read_text() for p in (tmp_path / "exact").glob("worker-*.log")]
    trial_attrs = [(t.user_attrs, t.system_attrs) for t in snapshot.trials]
    attrs = json.dumps([snapshot.user_attrs, trial_attrs], default=str)
    for text in [*outputs, *logs, attrs]:
        assert database.password not in text


def test_sigkill_of_a_worker_fails_and_retries_its_trial(
    database: Database, tmp_path: Path
) -> None:
    # A grace of 30 s: only the launcher, seeing the worker die, can fail the trial within 5 s.
    command = _launch("killed", tmp_path, "--workers", "2", "--trials", "6", "--heartbeat", "10")
    command += ["--grace", "30", "--pruner", "none", *held(hold := tmp_path / "hold")]
    with _running(command) as launch:
        victim = wait_for_running_trial(database, "killed", worker=0)
        pattern = "trainer.worker --study killed --worker-id 0"
        pids = subprocess.run(
            ["pgrep", "-f", pattern], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(pids) == 1
        os.kill(int(pids[0]), signal.SIGKILL)
        wait_for_state(database, "killed", victim, TrialState.FAIL, within=5)
        hold.unlink()  # the other worker runs the rest of the study, the retry among it
        output, _ = launch.communicate(timeout=600)

    snapshot = read_study(database, "killed")
    killed = next(t for t in snapshot.trials if t.number == victim)
    assert killed.user_attrs["fail_reason"] == "worker w0 died: killed by signal 9"
    retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number
    retries = [t for t in snapshot.trials if retried(t) == victim]
    assert len(retries) == 1
    assert retries[0].params == killed.params
    assert snapshot.count(*FINISHED) == 6
    assert snapshot.count(TrialState.RUNNING) == 0
    assert launch.returncode == 1, output  # a worker died: the launch says so
    assert "w0 (killed by signal 9)" in output


def test_a_study_deleted_while_it_runs_ends_the_launch_in_one_line(
    database: Database, tmp_path: Path
) -> None:
    with _one_held_worker(database, "gone", tmp_path) as (launch, _):
        deleted = subprocess.run(
            [HPO, "delete", "gone", "--yes"], capture_output=True, text=True, check=False
        )
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        output, _ = launch.communicate(timeout=60)
    assert launch.returncode == 2, output
    assert "error: study `gone` was deleted from the database while it ran" in output
    assert "Traceback" not in output
    assert not _workers_left("gone")
    log = (tmp_path / "gone" / "worker-0.log").read_text()
    assert "ERROR study `gone` was deleted from the database while it ran" in log


def test_hpo_stop_from_another_terminal_stops_a_local_launch(
    database: Database, tmp_path: Path
) -> None:
    with _one_held_worker(database, "halted", tmp_path) as (launch, held_trial):
        stopped = subprocess.run(
            [HPO, "stop", "halted"], capture_output=True, text=True, check=False
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "stopped 1 local worker process(es) of halted" in stopped.stdout
        output, _ = launch.communicate(timeout=60)
    assert launch.returncode == 1, output  # no trial completed
    assert "Traceback" not in output
    assert not _workers_left("halted")
    trial = read_study(database, "halted").trials[held_trial]
    assert trial.state is TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "worker stopped (SIGTERM)"
    again = subprocess.run([HPO, "stop", "halted"], capture_output=True, text=True, check=False)
    assert "no workers of halted here" in again.stdout


@contextmanager
def _one_held_worker(
    database: Database, study: str, runs: Path
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A one-worker local launch whose first trial is held running; the launch and that trial."""
    command = _launch(study, runs, "--workers", "1", "--trials", "4", "--tracking", "none")
    with _running(command + held(runs / "hold")) as launch:
        yield launch, wait_for_running_trial(database, study, worker=0)


@contextmanager
def _running(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    """A launch in the background; interrupted (Ctrl-C) and reaped if the test fails first."""
    launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield launch
    finally:
        if launch.poll() is None:
            launch.send_signal(signal.SIGINT)
        if launch.stdout is not None and not launch.stdout.closed:  # read it, then close it
            launch.communicate(timeout=120)


def test_postgres_restart_mid_study(database: Database, tmp_path: Path) -> None:
    command = _launch("restarted", tmp_path, "--workers", "2", "--trials", "6", "--pruner", "none")
    command += [f"trainer.max_epochs={LONG_TRIAL_EPOCHS}"]
    with _running(command) as launch:
        wait_for_running_trial(database, "restarted", worker=0)
        client = docker.from_env()
        client.containers.get(database.container).restart(timeout=5)
        client.close()
        output, _ = launch.communicate(timeout=600)
    assert launch.returncode == 0, output
    snapshot = read_study(database, "restarted")
    assert snapshot.count(TrialState.COMPLETE) == 6
    assert snapshot.count(TrialState.RUNNING, TrialState.FAIL) == 0


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


def test_persistent_crash_is_retried_then_the_launch_stops(
    database: Database, tmp_path: Path
) -> None:
    command = _launch("crashing", tmp_path, "--workers", "2", "--trials", "6", "--max-retry", "1")
    command += ["--max-failed", "3", "--pruner", "none"]
    command += ["model._target_=tests.integration.faults.CrashingMLP"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "more than --max-failed 3" in result.stdout
    snapshot = read_study(database, "crashing")
    assert snapshot.count(TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED) == 0
    assert snapshot.count(TrialState.FAIL) > 3
    retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number
    originals = [t for t in snapshot.trials if retried(t) is None]
    for original in originals:
        tries = [t for t in snapshot.trials if t is original or retried(t) == original.number]
        assert len(tries) <= 2  # max_retry + 1
    failed = [t for t in snapshot.trials if t.state is TrialState.FAIL]
    assert all("injected crash" in t.user_attrs["fail_reason"] for t in failed)


def test_too_many_workers_for_the_server_are_refused_before_anything(
    database: Database, tmp_path: Path
) -> None:
    command = _launch("crowded", tmp_path, "--workers", "80", "--force", "--trials", "5")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert "database connections" in result.stderr
    with pytest.raises(KeyError):
        read_study(database, "crowded")
    assert not (tmp_path / "crowded").exists()


def test_multi_objective_runs_and_best_gives_the_pareto_front(
    database: Database, tmp_path: Path
) -> None:
    command = _launch("pareto", tmp_path, "--workers", "1", "--trials", "4", "--pruner", "none")
    command += ["optimized_metric=[val_acc,val_loss]", "direction=[maximize,minimize]"]
    command += ["trainer.max_epochs=3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert read_study(database, "pareto").count(TrialState.COMPLETE) == 4
    shown = subprocess.run(
        [HPO, "best", "pareto", "--json", "--storage", database.url],
        capture_output=True,
        text=True,
        check=True,
    )
    front = json.loads(shown.stdout)["best"]
    assert 1 <= len(front) <= 4
    assert all(len(entry["values"]) == 2 for entry in front)
    assert all("trainer.train experiment=digits_mlp" in entry["command"] for entry in front)


def test_ctrl_c_stops_workers_fails_in_flight_trials_and_resumes(
    database: Database, tmp_path: Path
) -> None:
    command = _launch("interrupted", tmp_path, "--workers", "2", "--trials", "6")
    command += ["--pruner", "none", *held(hold := tmp_path / "hold")]
    with _running(command) as launch:
        wait_for_running_trial(database, "interrupted", worker=0)
        started = time.monotonic()
        launch.send_signal(signal.SIGINT)
        launch.communicate(timeout=60)
        assert time.monotonic() - started < 30
    assert launch.returncode == 1
    assert not _workers_left("interrupted")
    snapshot = read_study(database, "interrupted")
    assert snapshot.count(TrialState.RUNNING) == 0
    assert snapshot.count(TrialState.FAIL) >= 1
    reasons = [
        t.user_attrs.get("fail_reason") for t in snapshot.trials if t.state is TrialState.FAIL
    ]
    assert set(reasons) == {"worker stopped (SIGTERM)"}, reasons
    hold.unlink()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert read_study(database, "interrupted").count(*FINISHED) == 6


def test_two_launches_of_one_study_share_the_budget(database: Database, tmp_path: Path) -> None:
    command = _launch("twice", tmp_path, "--workers", "1", "--trials", "6", "--pruner", "none")
    command += ["trainer.max_epochs=5"]
    with _running(command) as first, _running(command) as second:
        outputs = [first.communicate(timeout=600)[0], second.communicate(timeout=600)[0]]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    storage = open_storage(database.url, "twice")
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    finally:
        storage.engine.dispose()
    assert names.count("twice") == 1
    snapshot = read_study(database, "twice")
    assert snapshot.count(*FINISHED) == 6
    assert len(snapshot.trials) == 6
    # Each launch's worker 0 has seed 1, as on two machines: still, no trial repeats another's
    # params (all six are TPE's random start-up trials).
    draws = [json.dumps(t.params, sort_keys=True) for t in snapshot.trials]
    assert len(set(draws)) == 6, draws
    # Each launch's worker 0 wrote a log of its own: every trial is in one of them, none in both.
    logs = {p.name: p.read_text() for p in (tmp_path / "twice").glob("worker-*.log")}
    assert sorted(logs) == ["worker-0.2.log", "worker-0.log"], sorted(logs)
    ran = [
        set(map(int, re.findall(r"trial (\d+) (?:COMPLETE|PRUNED) in", t))) for t in logs.values()
    ]
    assert not ran[0] & ran[1], ran
    assert ran[0] | ran[1] == {t.number for t in snapshot.trials}, ran
    # Each trial names the log of the worker that ran it, so `hpo status` can tell the two apart.
    for trial in snapshot.trials:
        assert f"trial {trial.number} COMPLETE in" in logs[trial.user_attrs["log"]]
    named = {reading.WorkerNames(snapshot.trials)(t) for t in snapshot.trials}
    assert named == {"w0", "w0 (worker-0.2.log)"}, named


def test_a_dead_worker_fails_its_own_launchs_trial_not_another_launchs(
    database: Database, tmp_path: Path
) -> None:
    # Two launches of one study, as on two machines: each has a worker 0.
    command = _launch("pair", tmp_path, "--workers", "1", "--trials", "4", "--heartbeat", "10")
    command += ["--grace", "30", "--pruner", "none", *held(hold := tmp_path / "hold")]
    with _running(command) as first, _running(command) as second:
        _wait_for_running_trials(database, "pair", 2)
        os.kill(_worker_pid(first.pid, "trainer.worker --study pair "), signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not (died := _died(database, "pair")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # three launcher ticks: a second, wrong, fail would be there by now
        died = _died(database, "pair")
        running = read_study(database, "pair").count(TrialState.RUNNING)
        # Its only worker gone, the first launch ends now: it does not wait the grace period
        # (40 s) out for the second launch's trial, which is held and alive.
        first_output = first.communicate(timeout=20)[0]
        hold.unlink()
        output = second.communicate(timeout=600)[0]
    assert len(died) == 1 and running == 1, died
    assert "w0 failed" in first_output, first_output
    assert second.returncode == 0, output
    assert read_study(database, "pair").count(*FINISHED) == 4


def _wait_for_running_trials(database: Database, study: str, count: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            trials = read_study(database, study).trials
        except KeyError:  # not created yet
            trials = []
        if (
            sum(t.state is TrialState.RUNNING and bool(t.intermediate_values) for t in trials)
            >= count
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"{count} trials of {study} never ran at once")


def _worker_pid(launch_pid: int, pattern: str) -> int:
    """The pid of the one worker process matching ``pattern`` that ``launch_pid`` started."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    mine = [int(pid) for pid in found.stdout.split() if _descends_from(int(pid), launch_pid)]
    assert len(mine) == 1, found.stdout
    return mine[0]


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid, after "(name) state"
    return False


def _died(database: Database, study: str) -> list[str]:
    """The fail reasons of the trials a launcher failed for a dead worker."""
    failed = read_study(database, study).trials
    reasons = [t.user_attrs.get("fail_reason", "") for t in failed if t.state is TrialState.FAIL]
    return [reason for reason in reasons if " died: " in reason]


def _ran_nothing(study: str, runs: Path) -> bool:
    """Whether the launch's workers, started while it readied the study, ran no trial and left."""
    log = runs / study / "worker-0.log"
    ran = log.exists() and "trial" in log.read_text()
    return not ran and not _workers_left(study)


def _workers_left(study: str) -> bool:
    """Whether a worker process of ``study`` still runs on this machine."""
    pattern = f"trainer.worker --study {study} "
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False)
    return found.returncode == 0


def test_a_resume_with_its_budget_reached_or_too_many_failures_runs_nothing(
    database: Database, tmp_path: Path
) -> None:
    quick = ["--workers", "1", "--heartbeat", "1", "--grace", "2", "trainer.max_epochs=1"]
    command = _launch("done", tmp_path, "--trials", "1", *quick)
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
    more = _launch("done", tmp_path, "--trials", "2", *quick)
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
    command = _launch("late", tmp_path, "--trials", "5", "--workers", "1", "--timeout", "1")
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert "stopped: the study's --timeout passed at " in first.stdout, first.stdout + first.stderr
    (tmp_path / "late" / "worker-0.log").unlink()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "its `--timeout` of 1 s, counted from its start (" in again.stdout
    assert "has passed; nothing to run" in again.stdout
    assert _ran_nothing("late", tmp_path)
