"""Workers from a user's image built FROM the trainer image, with their own config folder."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from optuna.trial import TrialState

from tests.integration.conftest import (
    HPO,
    REPO,
    BuiltImage,
    Database,
    build_user_image,
    read_study,
)

pytestmark = pytest.mark.integration
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
EXAMPLE = REPO / "examples" / "custom_model"


@pytest.fixture(scope="module")
def custom_image(docker_client: docker.DockerClient, trainer_image: BuiltImage) -> Iterator[str]:
    """examples/custom_model built as its README says."""
    yield from build_user_image(docker_client, EXAMPLE)


def _launch(study: str, runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [HPO, "launch", "--study", study, "--runs-dir", str(runs), "--seed", "1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def test_custom_model_example_runs_in_its_own_image(
    database: Database, custom_image: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    result = _launch(
        "custom",
        tmp_path,
        "--workers",
        "2",
        "--trials",
        "4",
        "--image",
        custom_image,
        "--config-dir",
        str(EXAMPLE / "conf"),
        "--experiment",
        "digits_cnn",
        "trainer.max_epochs=3",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    snapshot = read_study(database, "custom")
    assert snapshot.count(*FINISHED) == 4
    assert all(set(t.params) == {"channels", "dropout", "lr"} for t in snapshot.trials)
    assert all(t.values for t in snapshot.trials if t.state is TrialState.COMPLETE)
    assert (
        docker_client.containers.list(
            all=True, ignore_removed=True, filters={"label": "hpo.study=custom"}
        )
        == []
    )


def test_a_user_experiment_without_its_config_folder_is_refused(
    database: Database, tmp_path: Path
) -> None:
    result = _launch("nocfg", tmp_path, "--experiment", "digits_cnn", "--trials", "1")
    assert result.returncode == 2
    assert "unknown experiment `digits_cnn`" in result.stderr
    assert "Traceback" not in result.stderr


def test_oom_killed_worker_is_reported_in_the_trial_and_the_summary(
    database: Database, faults_image: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    result = _launch(
        "oom",
        tmp_path,
        "--workers",
        "1",
        "--trials",
        "2",
        "--max-retry",
        "0",
        "--image",
        faults_image,
        "--memory-per-worker",
        "1g",
        "model._target_=hpo_faults.MemoryHogMLP",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    snapshot = read_study(database, "oom")
    (trial,) = snapshot.trials
    assert trial.state is TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "worker w0 died: exit 137, OOM-killed"
    assert "w0 (exit 137, OOM-killed)" in result.stdout
    assert (
        docker_client.containers.list(
            all=True, ignore_removed=True, filters={"label": "hpo.study=oom"}
        )
        == []
    )


@pytest.fixture
def image_without_hpo(
    docker_client: docker.DockerClient, trainer_image: BuiltImage, tmp_path: Path
) -> Iterator[str]:
    """The trainer image less hpo: what a user's image built from another base looks like."""
    (tmp_path / "Dockerfile").write_text(
        "FROM hpo-trainer:latest\nUSER root\nRUN python -m pip uninstall -q -y hpo\nUSER hpo\n"
    )
    yield from build_user_image(docker_client, tmp_path)


def test_an_image_without_hpo_fails_its_worker_with_the_reason_in_the_summary(
    database: Database, image_without_hpo: str, tmp_path: Path
) -> None:
    result = _launch("nohpo", tmp_path / "runs", "--trials", "1", "--image", image_without_hpo)
    assert result.returncode == 1, result.stdout + result.stderr
    said = " ".join(result.stdout.split())  # the summary wraps at the terminal's width
    assert "workers that failed: w0 (exit 1: " in said
    assert "No module named 'trainer'" in said
    assert "Traceback" not in result.stdout + result.stderr
