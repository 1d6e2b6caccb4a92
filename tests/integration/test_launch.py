"""`hpo launch --backend local` against a real Postgres from `hpo db up` (a throw-away instance)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState
from trainer.storage import CONNECTIONS_PER_WORKER, open_storage

from orchestrator import reading
from orchestrator.study import LAUNCHER_CONNECTIONS
from tests.integration.conftest import (
    HPO,
    Database,
    held,
    local_launch,
    read_study,
    running_launch,
    wait_for_running_trial,
    wait_for_state,
    workers_left,
)

pytestmark = pytest.mark.integration
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def test_exact_budget_resume_pruning_and_no_password_anywhere(
    database: Database, tmp_path: Path
) -> None:
    outputs = []
    for budget in (12, 16, 20):
        command = local_launch("exact", tmp_path, "--workers", "2", "--trials", str(budget))
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
    command = local_launch(
        "killed", tmp_path, "--workers", "2", "--trials", "6", "--heartbeat", "10"
    )
    command += ["--grace", "30", "--pruner", "none", *held(hold := tmp_path / "hold")]
    with running_launch(command) as launch:
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
    assert not workers_left("gone")
    log = (tmp_path / "gone" / "worker-0.log").read_text()
    assert "ERROR study `gone` was deleted from the database while it ran" in log


def test_hpo_stop_from_another_terminal_stops_a_locallocal_launch(
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
    assert not workers_left("halted")
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
    command = local_launch(study, runs, "--workers", "1", "--trials", "4", "--tracking", "none")
    with running_launch(command + held(runs / "hold")) as launch:
        yield launch, wait_for_running_trial(database, study, worker=0)


def test_persistent_crash_is_retried_then_the_launch_stops(
    database: Database, tmp_path: Path
) -> None:
    command = local_launch(
        "crashing", tmp_path, "--workers", "2", "--trials", "6", "--max-retry", "1"
    )
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
    command = local_launch("crowded", tmp_path, "--workers", "80", "--force", "--trials", "5")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert "database connections" in result.stderr
    with pytest.raises(KeyError):
        read_study(database, "crowded")
    assert not (tmp_path / "crowded").exists()


def test_a_launch_holds_no_more_connections_than_it_reserves_and_returns_them(
    database: Database, tmp_path: Path
) -> None:
    workers = 2
    bound = workers * CONNECTIONS_PER_WORKER + LAUNCHER_CONNECTIONS  # what the check reserves
    # Autocommit: within one transaction Postgres shows the same snapshot of pg_stat_activity.
    observer = sqlalchemy.create_engine(database.url, isolation_level="AUTOCOMMIT")
    count = sqlalchemy.text(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hpo-pooled'"
    )
    peak = 0
    with observer.connect() as connection:
        command = local_launch("pooled", tmp_path, "--workers", str(workers), "--trials", "8")
        with running_launch(command) as launch:
            while launch.poll() is None:
                peak = max(peak, connection.execute(count).scalar_one())
                time.sleep(0.1)
        assert launch.returncode == 0
        left = connection.execute(count).scalar_one()
        deadline = time.monotonic() + 10  # a closed connection's row goes as its backend exits
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = connection.execute(count).scalar_one()
    observer.dispose()
    assert workers <= peak <= bound  # each worker's were seen, and none beyond the bound
    assert left == 0


def test_multi_objective_runs_and_best_gives_the_pareto_front(
    database: Database, tmp_path: Path
) -> None:
    command = local_launch(
        "pareto", tmp_path, "--workers", "1", "--trials", "4", "--pruner", "none"
    )
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
    command = local_launch("interrupted", tmp_path, "--workers", "2", "--trials", "6")
    command += ["--pruner", "none", *held(hold := tmp_path / "hold")]
    with running_launch(command) as launch:
        wait_for_running_trial(database, "interrupted", worker=0)
        started = time.monotonic()
        launch.send_signal(signal.SIGINT)
        launch.communicate(timeout=60)
        assert time.monotonic() - started < 30
    assert launch.returncode == 1
    assert not workers_left("interrupted")
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
    command = local_launch("twice", tmp_path, "--workers", "1", "--trials", "6", "--pruner", "none")
    command += ["trainer.max_epochs=5"]
    with running_launch(command) as first, running_launch(command) as second:
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
    command = local_launch("pair", tmp_path, "--workers", "1", "--trials", "4", "--heartbeat", "10")
    command += ["--grace", "30", "--pruner", "none", *held(hold := tmp_path / "hold")]
    with running_launch(command) as first, running_launch(command) as second:
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
