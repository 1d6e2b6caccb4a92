"""The docker backend's edges: refusals that start nothing, partial starts, restarts, detach."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import docker
import pytest
from docker.errors import NotFound
from docker.models.containers import Container
from optuna.trial import TrialState

from orchestrator.backends import WorkerResources, visible_gpus
from orchestrator.backends._docker_events import DeathWatch
from orchestrator.commands import _backend
from orchestrator.errors import ConfigError
from orchestrator.settings import Instance
from tests.integration.conftest import (
    HPO,
    BuiltImage,
    Database,
    held_in_containers,
    read_study,
    trainer_tag,
    wait_for_running_trial,
    wait_for_state,
)

pytestmark = pytest.mark.integration
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _hpo(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HPO, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _containers(client: docker.DockerClient, study: str) -> list[Container]:
    return client.containers.list(
        all=True, ignore_removed=True, filters={"label": f"hpo.study={study}"}
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--memory-per-worker", "100000g"], "more memory than the Docker engine has"),
        (["--gpus-per-worker", "1"], "`--gpus-per-worker`"),
        (["--backend", "local", "--gpus-per-worker", "1"], "1: no NVIDIA GPU on this machine"),
        (["--image", "no-such-image:1"], "no image `no-such-image:1`: build it first"),
        (["--memory-per-worker", "2GiB"], "'2GiB' is not a size"),
    ],
)
def test_refused_launch_is_one_line_and_starts_nothing(
    instance: Instance,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    args: list[str],
    expected: str,
) -> None:
    if "--gpus-per-worker" in args and visible_gpus():
        pytest.skip("this machine has a GPU: the GPU refusal needs one without")
    result = _hpo("launch", "--study", "refused", "--runs-dir", str(tmp_path), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert "Traceback" not in result.stderr
    label = [f"{key}={value}" for key, value in instance.labels.items()]
    assert (
        docker_client.containers.list(all=True, ignore_removed=True, filters={"label": label}) == []
    )  # no Postgres
    assert docker_client.volumes.list(filters={"name": instance.postgres_volume}) == []


@pytest.mark.skipif(
    shutil.which("nvidia-container-runtime-hook") is not None,
    reason="this host has the NVIDIA Container Toolkit: its engine can give containers GPUs",
)
def test_an_engine_that_cannot_give_containers_gpus_is_found_before_postgres(
    instance: Instance,
    trainer_image: BuiltImage,
    docker_client: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A GPU host without the toolkit: the driver sees a GPU, the engine cannot hand it over.
    monkeypatch.setattr(_backend, "visible_gpus", lambda: 1)
    resources = WorkerResources(cpus=1, gpus=1)
    with pytest.raises(ConfigError) as refused:
        _backend.make_backend(
            _backend.BackendName.docker, "gpus", trainer_tag(), resources, 1, launch_id="probe"
        )
    assert str(refused.value).startswith("`--gpus-per-worker`: the Docker engine cannot give")
    assert "could not select device driver" in str(refused.value)
    label = [f"{key}={value}" for key, value in instance.labels.items()]
    assert docker_client.containers.list(all=True, filters={"label": label}) == []


def test_a_launch_that_cannot_start_every_worker_stops_the_others(
    database: Database,
    trainer_image: BuiltImage,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    squatter = docker_client.containers.create(trainer_tag(), "true", name="hpo-clash-w1")
    try:
        result = _hpo("launch", "--study", "clash", "--workers", "2", "--runs-dir", str(tmp_path))
        assert result.returncode == 2, result.stdout + result.stderr
        assert "starting worker container hpo-clash-w1" in result.stderr
        assert "already in use" in result.stderr
        assert _containers(docker_client, "clash") == []  # w0 was started, then removed
        with pytest.raises(KeyError):  # the study is made once every worker has started
            read_study(database, "clash")
    finally:
        squatter.remove(force=True)


def test_workers_of_an_earlier_launch_that_still_run_refuse_a_new_one(
    database: Database,
    trainer_image: BuiltImage,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    earlier = [_slow_to_stop_worker(docker_client, "busy", k) for k in range(2)]
    try:
        result = _hpo("launch", "--study", "busy", "--runs-dir", str(tmp_path))
        assert result.returncode == 2
        assert "worker container(s) of `busy` from an earlier launch still run" in result.stderr
        assert "`hpo stop busy`" in result.stderr
        for container in earlier:
            container.reload()
            assert container.status == "running"
        mistyped = _hpo("stop", "bussy")
        assert mistyped.returncode == 0, mistyped.stderr
        assert "no workers of bussy here; studies with workers here: busy" in mistyped.stdout
        since = int(time.time()) - 1
        stopped = _hpo("stop", "busy")
        assert "stopped and removed 2 worker container(s) of busy" in stopped.stdout
        assert _containers(docker_client, "busy") == []
        # Both had their SIGTERM before either was killed: stopped at once, not one by one.
        events = _container_events(docker_client, [c.id for c in earlier], since)
        sigterms = [i for i, (action, signal) in enumerate(events) if signal == "15"]
        first_death = next(i for i, (action, _) in enumerate(events) if action == "die")
        assert len(sigterms) == 2 and max(sigterms) < first_death, events
    finally:
        for container in earlier:
            with contextlib.suppress(NotFound):
                container.remove(force=True)


SLOW_TO_STOP = """
import os, signal, time
signal.signal(signal.SIGTERM, lambda *_: (time.sleep(2), os._exit(0)))
time.sleep(120)
"""


def _slow_to_stop_worker(client: docker.DockerClient, study: str, worker: int) -> Container:
    """A running container labelled as a worker of an earlier launch, slow to stop.

    It leaves 2 s after its SIGTERM, as a worker failing its trial does: stopped one by one, the
    first would die before the second got its SIGTERM.
    """
    labels = {**Instance.from_env().labels, "hpo.study": study, "hpo.worker": str(worker)}
    return client.containers.run(
        trainer_tag(),
        ["python", "-c", SLOW_TO_STOP],
        name=f"hpo-{study}-w{worker}",
        labels={**labels, "hpo.launch": "earlier"},
        detach=True,
        network_mode="none",
    )


def _container_events(
    client: docker.DockerClient, ids: list[str], since: int
) -> list[tuple[str, str | None]]:
    """(action, signal) of the engine's kill and die events of ``ids`` since ``since``, in order."""
    stream = client.events(
        since=since,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": ["kill", "die"]},
    )
    return [
        (event["Action"], event["Actor"]["Attributes"].get("signal"))
        for event in stream
        if event["Actor"]["ID"] in ids
    ]


def test_restart_workers_brings_a_killed_worker_back(
    database: Database,
    faults_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    hold, held = held_in_containers(faults_image, tmp_path, "phoenix")  # the kill lands mid-trial
    command = [HPO, "launch", "--study", "phoenix", "--workers", "1", "--trials", "3"]
    command += ["--runs-dir", str(tmp_path), "--restart-workers", "1", "--pruner", "none", *held]
    launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        victim = wait_for_running_trial(database, "phoenix", worker=0)
        (container,) = docker_client.containers.list(
            ignore_removed=True, filters={"label": "hpo.study=phoenix"}
        )
        container.kill()
        wait_for_state(database, "phoenix", victim, TrialState.FAIL, within=5)
        hold.unlink()
        output, _ = launch.communicate(timeout=600)
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.communicate()
    assert launch.returncode == 0, output
    assert "workers restarted: w0 1x (last: exit 137)" in output
    snapshot = read_study(database, "phoenix")
    assert snapshot.count(*FINISHED) == 3  # the restarted worker ran the retry and the rest
    assert _containers(docker_client, "phoenix") == []


def test_a_study_refused_after_its_workers_started_leaves_no_container(
    database: Database,
    trainer_image: BuiltImage,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    # The workers start while the launch creates or resumes the study; a refusal then stops them.
    base = ["launch", "--study", "respec", "--workers", "2", "--trials", "1"]
    base += ["--runs-dir", str(tmp_path), "--tracking", "none", "--no-report"]
    first = _hpo(*base, "trainer.max_epochs=1")
    assert first.returncode == 0, first.stdout + first.stderr
    since = int(time.time())
    refused = _hpo(*base, "trainer.max_epochs=2")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "study `respec` exists with another spec" in refused.stderr
    events = docker_client.events(
        since=since,
        until=int(time.time()) + 1,
        filters={"type": "container", "label": "hpo.study=respec"},
        decode=True,
    )
    starts = [event for event in events if event["Action"] == "start"]
    assert len(starts) == 2  # (`since` is whole seconds: the first launch's ends may be there)
    assert _containers(docker_client, "respec") == []
    assert len(read_study(database, "respec").trials) == 1


def test_detached_workers_reach_the_budget_and_gc_removes_them(
    database: Database,
    trainer_image: BuiltImage,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    result = _hpo(
        "launch",
        "--study",
        "alone",
        "--workers",
        "2",
        "--trials",
        "4",
        "--detach",
        "--runs-dir",
        str(tmp_path),
        "trainer.max_epochs=5",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "detached: 2 workers run on" in result.stdout
    deadline = time.monotonic() + 300
    while any(c.status == "running" for c in _containers(docker_client, "alone")):
        assert time.monotonic() < deadline, "detached workers never ended"
        time.sleep(1)
    assert read_study(database, "alone").count(*FINISHED) == 4
    logs = _hpo("logs", "alone", "--runs-dir", str(tmp_path))
    assert logs.stdout.count("stopping: done") == 2  # read from the ended containers
    assert "removed 2 ended worker container(s)" in _hpo("gc").stdout
    assert _containers(docker_client, "alone") == []


def test_workers_outlive_a_killed_launcher_and_gc_removes_them(
    database: Database,
    trainer_image: BuiltImage,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    command = [HPO, "launch", "--study", "orphans", "--workers", "2", "--trials", "4"]
    command += ["--runs-dir", str(tmp_path), "--pruner", "none", "trainer.max_epochs=60"]
    launch = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_running_trial(database, "orphans", worker=0)
    finally:
        launch.kill()  # SIGKILL: no cleanup of any kind
        launch.wait()
    deadline = time.monotonic() + 300
    while any(c.status == "running" for c in _containers(docker_client, "orphans")):
        assert time.monotonic() < deadline, "orphaned workers never ended"
        time.sleep(1)
    snapshot = read_study(database, "orphans")
    assert snapshot.count(*FINISHED) == 4  # they stopped at the budget by themselves
    assert snapshot.count(TrialState.RUNNING) == 0
    assert "removed 2 ended worker container(s)" in _hpo("gc").stdout
    assert _containers(docker_client, "orphans") == []


def test_death_watch_wakes_on_a_killed_container_of_its_launch_only(
    trainer_image: BuiltImage, docker_client: docker.DockerClient
) -> None:
    labels = {**Instance.from_env().labels, "hpo.study": "watched"}
    sleeper = ["python", "-c", "import time; time.sleep(120)"]
    ours, other = (
        docker_client.containers.run(
            trainer_tag(),
            sleeper,
            labels={**labels, "hpo.launch": launch},
            detach=True,
            network_mode="none",
        )
        for launch in ("watched-launch", "other-launch")
    )
    watch = DeathWatch(docker_client, "hpo.launch=watched-launch")
    try:
        other.kill()
        assert not watch.wait(3.0)  # another launch's container: no wake-up
        ours.kill()
        assert watch.wait(60.0)
    finally:
        watch.close()
        for container in (ours, other):
            with contextlib.suppress(NotFound):
                container.remove(force=True)
