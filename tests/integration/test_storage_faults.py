"""Outages of the study's real Postgres: a connection ended mid-query, a restart, a long outage.

RELIABILITY.md's faults 7 and 8: a restart shorter than the grace period costs no trial; an outage
longer than it costs at most the trials whose heartbeat lapsed (failed, then retried), never a
worker or the launch.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Query
from trainer.retries import retry_of
from trainer.storage import open_storage, quiet_optuna, with_retries

from orchestrator.reading import HEARTBEAT_LOST
from tests.integration.conftest import (
    Database,
    held,
    local_launch,
    read_study,
    running_launch,
    wait_for_running_trial,
)

pytestmark = pytest.mark.integration
# Fault 7: Postgres down this long, well within the grace period (a plain `docker restart`
# fits between two heartbeats here: no heartbeat would notice it).
RESTART_DOWN_S = 3
RESTART_GRACE_S = 8
# Fault 8: Postgres down for longer than this grace period.
GRACE_S = 3


@pytest.fixture
def end_connection_at_next_query(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], None]]:
    """Arm a fault: Postgres ends the session's connection as the next ORM query starts.

    ``pg_terminate_backend`` is what a server shutdown does to each connection ("terminating
    connection due to administrator command"), but at a chosen moment instead of by chance.
    """
    admin = create_engine(database.url)
    real_all = Query.all
    ended: list[int] = []

    def all_after_ending_the_connection(query: Query[Any]) -> list[Any]:
        if not ended:
            driver_connection = query.session.connection().connection.dbapi_connection
            backend = driver_connection.info.backend_pid  # type: ignore[union-attr]
            with admin.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            ended.append(backend)
        return real_all(query)

    yield lambda: monkeypatch.setattr(Query, "all", all_after_ending_the_connection)
    admin.dispose()


def test_reading_trials_survives_a_connection_ended_mid_query(
    database: Database,
    end_connection_at_next_query: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    quiet_optuna()
    storage = open_storage(database.url, "ended-mid-query")
    study = optuna.create_study(storage=storage, study_name="ended-mid-query")
    x = optuna.distributions.FloatDistribution(0, 1)
    study.add_trial(optuna.trial.create_trial(params={"x": 0.5}, distributions={"x": x}, value=1))
    study_id = storage.get_study_id_from_name("ended-mid-query")
    try:
        end_connection_at_next_query()
        trials = with_retries(lambda: storage.get_all_trials(study_id), for_s=30)
        assert [trial.params for trial in trials] == [{"x": 0.5}]
        assert "database unreachable (terminating connection" in caplog.text
        assert "SELECT" not in capfd.readouterr().err  # Optuna's warning, with the whole query
    finally:
        optuna.delete_study(study_name="ended-mid-query", storage=storage)
        storage.remove_session()
        storage.engine.dispose()


def test_a_restart_shorter_than_the_grace_period_costs_no_trial(
    database: Database, tmp_path: Path
) -> None:
    command = local_launch("restarted", tmp_path, "--workers", "2", "--trials", "6")
    command += ["--heartbeat", "1", "--grace", str(RESTART_GRACE_S), "--pruner", "none"]
    hold = tmp_path / "hold"
    with running_launch([*command, "--no-report", *held(hold)]) as launch:
        for worker in (0, 1):
            wait_for_running_trial(database, "restarted", worker=worker)
        _stop_postgres_for(database, RESTART_DOWN_S)
        # The trials outlive the restart by more than the grace period: only a heartbeat that
        # beats again once the database is back keeps its trial from being failed as stale.
        time.sleep(RESTART_GRACE_S + 4)
        hold.unlink()
        output, _ = launch.communicate(timeout=300)
    assert launch.returncode == 0, output
    snapshot = read_study(database, "restarted")
    assert snapshot.count(TrialState.COMPLETE) == 6
    assert snapshot.count(TrialState.RUNNING, TrialState.FAIL) == 0


def test_an_outage_longer_than_the_grace_period_costs_trials_not_workers(
    database: Database, tmp_path: Path
) -> None:
    command = local_launch("outage", tmp_path, "--workers", "2", "--trials", "6")
    command += ["--heartbeat", "1", "--grace", str(GRACE_S), "--pruner", "none", "--no-report"]
    hold = tmp_path / "hold"
    with running_launch(command + held(hold)) as launch:
        for worker in (0, 1):  # both trials held in training: the outage lands mid-trial
            wait_for_running_trial(database, "outage", worker=worker)
        _stop_postgres_for(database, GRACE_S + 5)
        hold.unlink()
        output, _ = launch.communicate(timeout=300)
    assert launch.returncode == 0, output
    assert "error:" not in output and "Traceback" not in output
    assert "w0 succeeded" in output and "w1 succeeded" in output
    snapshot = read_study(database, "outage")
    assert snapshot.count(TrialState.COMPLETE) == 6
    assert snapshot.count(TrialState.RUNNING) == 0
    # Whoever came first once the database was back: a lapsed heartbeat's reaper (the trial
    # FAIL and retried, its worker's late result logged), or the heartbeat (the trial went on).
    logs = "".join(p.read_text() for p in (tmp_path / "outage").glob("worker-*.log"))
    failed = [t for t in snapshot.trials if t.state is TrialState.FAIL]
    retried = {retry_of(t.system_attrs) for t in snapshot.trials}
    for trial in failed:
        assert trial.number in retried
        assert trial.user_attrs.get("fail_reason", HEARTBEAT_LOST) == HEARTBEAT_LOST
        assert re.search(rf"trial {trial.number} was already finished elsewhere", logs), logs


def _stop_postgres_for(database: Database, seconds: float) -> None:
    """Postgres down for ``seconds``: its container stopped, then started again."""
    client = docker.from_env()
    postgres = client.containers.get(database.container)
    postgres.stop(timeout=1)
    time.sleep(seconds)
    postgres.start()
    client.close()
