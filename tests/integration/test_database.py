"""The managed Postgres on the real engine: up, a study from a worker container, down, up."""

from __future__ import annotations

import socket

import docker
import pytest
from typer.testing import CliRunner

from orchestrator import database
from orchestrator.cli import app
from orchestrator.database import ManagedPostgres
from orchestrator.settings import Instance
from tests.integration.conftest import BuiltImage, trainer_tag

pytestmark = pytest.mark.integration

runner = CliRunner()


def _hpo(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _in_worker(client: docker.DockerClient, instance: Instance, code: str) -> str:
    """Run Python in a trainer container on the instance's network, as a worker would."""
    url = ManagedPostgres(client, instance).url(from_network=True, reveal=True)
    output = client.containers.run(
        trainer_tag(),
        ["python", "-c", code],
        environment={"HPO_TEST_STORAGE": url},
        network=instance.network,
        labels=instance.labels,
        remove=True,
        stderr=False,
    )
    return output.decode().strip()


CREATE_STUDY = """
import os, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(storage=os.environ["HPO_TEST_STORAGE"], study_name="kept")
study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
print(len(study.trials))
"""
COUNT_TRIALS = """
import os, optuna
study = optuna.load_study(storage=os.environ["HPO_TEST_STORAGE"], study_name="kept")
print(len(study.trials))
"""


def test_study_survives_down_and_up(
    docker_client: docker.DockerClient, trainer_image: BuiltImage, instance: Instance
) -> None:
    shown = _hpo("db", "up")
    managed = ManagedPostgres(docker_client, instance)
    password = managed.url(reveal=True).split(":")[2].split("@")[0]
    assert "Postgres ready at postgresql+psycopg://hpo:***@127.0.0.1:" in shown
    assert password not in shown
    assert _in_worker(docker_client, instance, CREATE_STUDY) == "3"

    _hpo("db", "down")
    state = managed.status()
    assert (state.state, state.volume_exists) == ("absent", True)

    _hpo("db", "up")
    assert _in_worker(docker_client, instance, COUNT_TRIALS) == "3"

    _hpo("db", "down", "--delete-data")
    assert not managed.status().volume_exists
    assert not managed.password_path.exists()


def test_up_is_idempotent_and_status_reports(
    docker_client: docker.DockerClient, instance: Instance
) -> None:
    _hpo("db", "up")
    first = docker_client.containers.get(instance.postgres_container).id
    _hpo("db", "up")
    assert docker_client.containers.get(instance.postgres_container).id == first
    status = _hpo("db", "status")
    assert "running (healthy)" in status
    assert f"{instance.postgres_volume}: present" in status
    container = docker_client.containers.get(instance.postgres_container)
    environment = " ".join(container.attrs["Config"]["Env"])
    password = ManagedPostgres(docker_client, instance).url(reveal=True).split(":")[2].split("@")[0]
    assert password not in environment


def test_taken_port_makes_up_pick_another(
    monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient, instance: Instance
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(database, "PREFERRED_PORT", port)
        _hpo("db", "up")
        chosen = ManagedPostgres(docker_client, instance).status().port
    assert chosen is not None
    assert chosen != port
