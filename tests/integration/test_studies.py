"""`hpo delete` against the real Postgres: it says what it would delete before it asks."""

from __future__ import annotations

import subprocess

import optuna
import pytest
from trainer.storage import open_storage

from tests.integration.conftest import HPO, Database

pytestmark = pytest.mark.integration


def _delete(*args: str, answer: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HPO, "delete", *args],
        input=answer,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_delete_names_the_trials_asks_and_then_deletes(database: Database) -> None:
    storage = open_storage(database.url, "doomed")
    study = optuna.create_study(study_name="doomed", storage=storage)
    study.tell(study.ask(), 1.0)
    study.ask()  # left RUNNING, as a worker of a launch still going would
    storage.engine.dispose()

    declined = _delete("doomed", answer="n\n")
    assert declined.returncode == 1
    asked = "Delete study doomed and its 2 trials; 1 still RUNNING (`hpo stop doomed` first?)"
    assert asked in declined.stdout
    listed = subprocess.run([HPO, "studies"], capture_output=True, text=True, check=True)
    assert "doomed" in listed.stdout  # still there

    deleted = _delete("doomed", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == "deleted doomed"

    again = _delete("doomed")  # nothing to ask about: the error comes first
    assert again.returncode == 2
    assert again.stderr.startswith("error: no study `doomed`")
    assert "Delete study" not in again.stdout
