"""`docker compose up`: Postgres, the orchestrator running one study, optuna-dashboard.

Each test brings up its own compose project (its own network, volumes, instance label and
dashboard port) from the repository's compose.yaml, and takes it down with `down -v`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from orchestrator import images
from orchestrator.settings import POSTGRES_IMAGE, Instance
from tests.integration.conftest import REPO, BuiltImage, Report, http_get, remove_instance

pytestmark = pytest.mark.integration
ARTIFACTS = Path(os.environ.get("HPO_TEST_ARTIFACTS", REPO / "test-artifacts"))
PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True)
class Stack:
    project: str
    env: dict[str, str]
    dashboard: str  # base URL

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = ["docker", "compose", "-p", self.project, *args]
        return subprocess.run(
            command,
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_image(docker_client: docker.DockerClient) -> str:
    return images.ensure_postgres_image(docker_client, POSTGRES_IMAGE, REPO, lambda _: None)


@pytest.fixture
def stack(trainer_image: BuiltImage, postgres_image: str, tmp_path: Path) -> Iterator[Stack]:
    project = f"hpo-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "POSTGRES_IMAGE": postgres_image,
        "HPO_INSTANCE": project,
        "HPO_STUDY": "composed",
        "HPO_WORKERS": "2",
        "HPO_TRIALS": "4",
        "HPO_RUNS_DIR": str(tmp_path / "runs"),
        "HPO_STATE_DIR": str(tmp_path / "state"),
        "HPO_DASHBOARD_PORT": str(port := _free_port()),
    }
    made = Stack(project, env, f"http://127.0.0.1:{port}")
    yield made
    made.compose("down", "-v", "--remove-orphans")
    # Workers are the orchestrator's, not compose's: should its cleanup not have run, they stay.
    remove_instance(Instance(project))


def _containers(client: docker.DockerClient, label: str) -> list[Container]:
    return client.containers.list(all=True, ignore_removed=True, filters={"label": label})


def _worker_containers(client: docker.DockerClient, stack: Stack) -> list[Container]:
    """The orchestrator's worker containers, once they run."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = _containers(client, f"hpo.instance={stack.project}")
        workers = [c for c in found if "hpo.worker" in c.labels]
        if len(workers) == 2:
            return workers
        time.sleep(0.2)
    raise AssertionError("the orchestrator never started its 2 workers")


def test_compose_up_runs_a_study_and_serves_the_dashboard(
    stack: Stack, docker_client: docker.DockerClient, report: Report
) -> None:
    stack.env["HPO_ARGS"] = "trainer.max_epochs=40"
    up = stack.compose("up", "-d")
    assert up.returncode == 0, up.stderr
    workers = _worker_containers(docker_client, stack)
    for worker in workers:  # siblings on the project's network, with its labels
        assert worker.labels[PROJECT_LABEL] == stack.project
        assert worker.labels["com.docker.compose.service"] == "worker"
        assert list(worker.attrs["NetworkSettings"]["Networks"]) == [f"{stack.project}_default"]
    labels = [f"{PROJECT_LABEL}={stack.project}", "com.docker.compose.service=orchestrator"]
    (orchestrator,) = docker_client.containers.list(
        all=True, ignore_removed=True, filters={"label": labels}
    )
    exit_code = orchestrator.wait(timeout=600)["StatusCode"]
    logs = stack.compose("logs", "--no-color", "orchestrator").stdout
    assert exit_code == 0, logs
    # Not a terminal: the progress comes as lines while the study runs, not only as its last table.
    assert re.search(r"composed  [1-3]/4 trials", logs), logs[-3000:]

    status, page = http_get(f"{stack.dashboard}/dashboard/")
    assert status == 200 and b"<html" in page.lower()
    summaries = json.loads(http_get(f"{stack.dashboard}/api/studies")[1])["study_summaries"]
    (study,) = [s for s in summaries if s["study_name"] == "composed"]
    detail = json.loads(http_get(f"{stack.dashboard}/api/studies/{study['study_id']}?after=0")[1])
    assert [t["state"] for t in detail["trials"]].count("Complete") == 4
    report(f"compose: dashboard screenshot {_screenshot(stack, study['study_id'])}")

    down = stack.compose("down")
    assert down.returncode == 0, down.stderr
    assert _containers(docker_client, f"hpo.instance={stack.project}") == []
    assert _containers(docker_client, f"{PROJECT_LABEL}={stack.project}") == []


def test_compose_down_mid_study_stops_and_removes_the_workers(
    stack: Stack, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stack.env["HPO_ARGS"] = "--pruner none trainer.max_epochs=2000"  # long trials
    assert stack.compose("up", "-d").returncode == 0
    with _followed_logs(stack, "orchestrator", tmp_path / "orchestrator.log") as log:
        _worker_containers(docker_client, stack)
        started = time.monotonic()
        down = stack.compose("down", timeout=120)
        took = time.monotonic() - started
    assert down.returncode == 0, down.stderr
    left = _containers(docker_client, f"hpo.instance={stack.project}")
    # `down` says nothing of a worker it could not remove; the orchestrator's output does.
    assert left == [], f"down took {took:.0f} s; orchestrator:\n{log.read_text()[-3000:]}"
    assert _containers(docker_client, f"{PROJECT_LABEL}={stack.project}") == []
    volumes = docker_client.volumes.list(filters={"label": f"{PROJECT_LABEL}={stack.project}"})
    assert len(volumes) == 2  # pgdata and secrets stay: only `down -v` deletes data


@contextmanager
def _followed_logs(stack: Stack, service: str, path: Path) -> Iterator[Path]:
    """``service``'s output, kept in ``path`` as it comes: ``down`` removes the container."""
    with path.open("w") as out:
        follower = subprocess.Popen(
            ["docker", "compose", "-p", stack.project, "logs", "-f", "-t", service],
            cwd=REPO,
            env=stack.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield path
        finally:
            follower.terminate()
            follower.wait(timeout=10)


def _screenshot(stack: Stack, study_id: int) -> str:
    """A headless Chromium shot of the study's page; its DOM must name the study."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make provision` installs it")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    url = f"{stack.dashboard}/dashboard/studies/{study_id}"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    flags += ["--virtual-time-budget=15000", "--window-size=1400,1000"]
    dom = _run([chromium, *flags, "--dump-dom", url])
    assert "composed" in dom, dom[-2000:]
    _run([chromium, *flags, f"--screenshot={shot}", url])
    assert shot.stat().st_size > 10_000
    return str(shot)


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
