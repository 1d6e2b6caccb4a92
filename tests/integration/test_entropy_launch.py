"""The entropy experiment in worker containers: the C++ extension is built into the image."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.integration.conftest import HPO, BuiltImage, Database, read_study

pytestmark = pytest.mark.integration


def test_entropy_experiment_runs_in_worker_containers(
    database: Database, trainer_image: BuiltImage, tmp_path: Path
) -> None:
    command = [HPO, "launch", "--experiment", "entropy", "--study", "ent", "--workers", "2"]
    command += ["--trials", "2", "--runs-dir", str(tmp_path), "--tracking", "none"]
    command += ["data.size=2000", "trainer.max_epochs=2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    snapshot = read_study(database, "ent")
    assert snapshot.count(TrialState.COMPLETE, TrialState.PRUNED) == 2
    assert all(t.values is None or t.values[0] > 0 for t in snapshot.trials)  # an MAE
