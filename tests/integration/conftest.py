"""Real Docker engine fixtures, scoped by a unique instance label and removed afterwards.

Timings the acceptance criteria ask to *report* (not assert) are collected with ``report`` and
printed in pytest's terminal summary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from trainer.storage import open_storage

from orchestrator import engine, images
from orchestrator.backends._docker import RUNS_MOUNT
from orchestrator.database import ManagedPostgres
from orchestrator.settings import PYTHON_BASE_IMAGE, TRAINER_IMAGE, Instance

REPO = Path(__file__).resolve().parents[2]
HPO = str(Path(sys.executable).parent / "hpo")
_REPORTED: list[str] = []

Report = Callable[[str], None]


@pytest.fixture(scope="session")
def report() -> Report:
    return _REPORTED.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORTED:
        terminalreporter.section("reported timings (not asserted)")
        for line in _REPORTED:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = engine.connect()
    yield client
    client.close()


@dataclass(frozen=True)
class BuiltImage:
    image_id: str
    seconds: float
    build_kwargs: dict[str, Any]
    replaced: str | None  # the image hpo-trainer:latest was before the build


@pytest.fixture(scope="session")
def trainer_image(docker_client: docker.DockerClient, report: Report) -> BuiltImage:
    """The trainer image built from a clean cache, recording what was asked of the engine.

    ``HPO_TEST_IMAGE_CACHE=1`` keeps the layer cache: an inner loop on a machine that built the
    image before then starts in seconds, not minutes. CI never sets it (and starts empty anyway).
    """
    nocache = os.environ.get("HPO_TEST_IMAGE_CACHE") != "1"
    calls: list[dict[str, Any]] = []
    real_build = docker_client.api.build

    def recording_build(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_build(*args, **kwargs)

    docker_client.api.build = recording_build  # type: ignore[method-assign]
    try:
        replaced: str | None = docker_client.images.get(f"{TRAINER_IMAGE}:latest").id
    except docker.errors.ImageNotFound:
        replaced = None
    started = time.monotonic()
    try:
        image_id = images.build_trainer_image(
            docker_client, REPO, base=PYTHON_BASE_IMAGE, log=lambda line: None, nocache=nocache
        )
    finally:
        docker_client.api.build = real_build  # type: ignore[method-assign]
    seconds = time.monotonic() - started
    kind = "clean-cache build" if nocache else "build with the layer cache"
    report(f"trainer image: {kind} {seconds:.0f} s (wheelhouse and base included)")
    (kwargs,) = calls
    return BuiltImage(image_id, seconds, kwargs, replaced)


FAULTS_DOCKERFILE = """\
FROM hpo-trainer:latest
COPY faults.py /opt/faults/hpo_faults.py
ENV PYTHONPATH=/opt/faults
"""


def build_user_image(client: docker.DockerClient, context: Path) -> Iterator[str]:
    """A user's image built from ``context`` (FROM the trainer image), removed afterwards."""
    tag = f"hpo-test-user-{uuid.uuid4().hex[:8]}:latest"
    client.images.build(path=str(context), tag=tag, rm=True, network_mode="none")
    yield tag
    client.images.remove(tag, force=True)


@pytest.fixture(scope="session")
def faults_image(
    docker_client: docker.DockerClient,
    trainer_image: BuiltImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The trainer image plus the misbehaving models of tests/integration/faults.py."""
    context = tmp_path_factory.mktemp("faults-image")
    shutil.copy(Path(__file__).with_name("faults.py"), context / "faults.py")
    (context / "Dockerfile").write_text(FAULTS_DOCKERFILE)
    yield from build_user_image(docker_client, context)


def held(
    hold: Path, model: str = "tests.integration.faults.HeldMLP", seen_as: str = ""
) -> list[str]:
    """Create ``hold``; the overrides whose trials (``faults.HeldMLP``) wait on it after epoch 0.

    ``seen_as`` is the file's path where the workers run, when it differs from the host's.
    """
    hold.parent.mkdir(parents=True, exist_ok=True)
    hold.touch()
    return [f"model._target_={model}", f"+model.hold_file={seen_as or hold}"]


def held_in_containers(faults_image: str, runs_dir: Path, study: str) -> tuple[Path, list[str]]:
    """The hold file of ``study`` on the host, and the launch options whose trials it holds.

    The workers run ``HeldMLP`` from ``faults_image`` and see the file in their run folder,
    bind-mounted from the host: removing it here lets the study run on at full speed.
    """
    hold = runs_dir / study / "hold"
    overrides = held(hold, "hpo_faults.HeldMLP", seen_as=f"{RUNS_MOUNT}/{study}/hold")
    return hold, ["--image", faults_image, *overrides]


@pytest.fixture
def instance(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Instance]:
    """A throw-away hpo instance: its own names, labels and config folder."""
    test_instance = Instance(f"hpo-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("HPO_INSTANCE", test_instance.name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield test_instance
    remove_instance(test_instance)


def remove_instance(instance: Instance) -> None:
    """Remove every container and network with the instance's label, then its volume."""
    client = engine.connect()
    label = [f"{key}={value}" for key, value in instance.labels.items()]
    for container in client.containers.list(
        all=True, ignore_removed=True, filters={"label": label}
    ):
        with contextlib.suppress(docker.errors.NotFound):  # gone since the listing
            container.remove(force=True)
    for network in client.networks.list(filters={"label": label}):
        network.remove()
    for volume in client.volumes.list(filters={"name": instance.postgres_volume}):
        volume.remove(force=True)
    client.close()


@dataclass(frozen=True)
class Database:
    url: str
    password: str
    container: str


@dataclass(frozen=True)
class Snapshot:
    trials: list[FrozenTrial]
    user_attrs: dict[str, object]

    def count(self, *states: TrialState) -> int:
        return sum(t.state in states for t in self.trials)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One managed Postgres for this module, under its own instance name and config folder."""
    instance = Instance(f"hpo-test-{uuid.uuid4().hex[:8]}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPO_INSTANCE", instance.name)
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        subprocess.run([HPO, "db", "up"], check=True, capture_output=True, timeout=600)
        client = engine.connect()
        url = ManagedPostgres(client, instance).url(reveal=True)
        client.close()
        yield Database(url, url.split(":")[2].split("@")[0], instance.postgres_container)
        remove_instance(instance)


def local_launch(name: str, runs: Path, *args: str) -> list[str]:
    """`hpo launch --backend local` of ``name`` with runs under ``runs``, seed 1, and ``args``."""
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


@contextlib.contextmanager
def running_launch(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    """A launch in the background; interrupted (Ctrl-C) and reaped if the test fails first."""
    launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield launch
    finally:
        if launch.poll() is None:
            launch.send_signal(signal.SIGINT)
        if launch.stdout is not None and not launch.stdout.closed:  # read it, then close it
            launch.communicate(timeout=120)


def workers_left(study: str) -> bool:
    """Whether a worker process of ``study`` still runs on this machine."""
    pattern = f"trainer.worker --study {study} "
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False)
    return found.returncode == 0


def read_study(database: Database, name: str) -> Snapshot:
    """Everything about a study, read through a storage that is closed afterwards."""
    storage = open_storage(database.url, name)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        return Snapshot(study.get_trials(), dict(study.user_attrs))
    finally:
        storage.engine.dispose()


def wait_for_running_trial(database: Database, name: str, worker: int, within: float = 180) -> int:
    """The number of a trial that ``worker`` is running and has reported an epoch of."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            trials = read_study(database, name).trials
        except KeyError:  # the study is not created yet
            trials = []
        for trial in trials:
            running = trial.state is TrialState.RUNNING and trial.intermediate_values
            if running and trial.user_attrs.get("worker") == worker:
                return trial.number
        time.sleep(0.2)
    raise AssertionError(f"worker {worker} never ran a trial")


def wait_for_state(
    database: Database, name: str, number: int, state: TrialState, within: float
) -> None:
    """Return once trial ``number`` is in ``state``; fail if that takes ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(t.number == number and t.state is state for t in read_study(database, name).trials):
            return
        time.sleep(0.1)
    raise AssertionError(f"trial {number} was not {state.name} within {within} s")


def http_get(url: str, deadline_s: float = 60) -> tuple[int, bytes]:
    """Status and body of a GET of ``url``, retried until a server that is starting answers."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status), response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def trainer_tag() -> str:
    return f"{TRAINER_IMAGE}:latest"
