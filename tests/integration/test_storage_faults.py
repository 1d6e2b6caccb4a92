"""The study storage on a real Postgres whose server ends a connection in the middle of a query."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import optuna
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Query
from trainer.storage import open_storage, quiet_optuna, with_retries

from tests.integration.conftest import Database

pytestmark = pytest.mark.integration


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
