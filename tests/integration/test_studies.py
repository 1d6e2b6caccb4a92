"""`hpo delete`, `hpo best` and `hpo studies` against the real Postgres."""

from __future__ import annotations

import subprocess

import optuna
import pytest
from trainer.storage import open_storage

from orchestrator.study import create_or_resume
from tests.fronts import tell_values, two_objective_spec
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


def test_best_names_each_metric_and_the_front(database: Database) -> None:
    spec = two_objective_spec()
    create_or_resume(database.url, "fronted", spec, force=False)
    storage = open_storage(database.url, "fronted")
    study = optuna.load_study(study_name="fronted", storage=storage)
    tell_values(study)
    storage.engine.dispose()

    shown = subprocess.run(
        [HPO, "best", "fronted"], capture_output=True, text=True, timeout=60, check=True
    )
    lines = shown.stdout.splitlines()
    assert lines[0] == "fronted: Pareto front of 2 trials (maximize val_acc, minimize val_loss)"
    assert lines[1].startswith("trial 0: val_acc 0.9, val_loss 0.3 {")
    assert lines[3].startswith("trial 1: val_acc 0.8, val_loss 0.2 {")
    assert "trial 2" not in shown.stdout
    listed = subprocess.run([HPO, "studies"], capture_output=True, text=True, check=True)
    (row,) = [line.split() for line in listed.stdout.splitlines() if "fronted" in line]
    assert row[:5] == ["fronted", "3/3", "front", "of", "2"], row
