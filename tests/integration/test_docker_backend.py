"""`hpo launch --backend docker`: one hardened container per worker, from the trainer image."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import optuna
import pytest
from docker.models.containers import Container
from optuna.trial import TrialState
from typer.testing import CliRunner

from orchestrator.backends import DockerBackend, WorkerResources
from orchestrator.cli import app
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
CORES = os.cpu_count() or 1


def _inspect_workers(client: docker.DockerClient, study: str, count: int) -> list[dict[str, Any]]:
    """``docker inspect`` of the study's worker containers, once all ``count`` run."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = client.containers.list(ignore_removed=True, filters={"label": f"hpo.study={study}"})
        if len(found) == count:
            return [container.attrs for container in found]
        time.sleep(0.2)
    raise AssertionError(f"{count} worker containers of {study} never ran together")


def test_docker_workers_reach_the_budget_hardened_and_leave_nothing(
    database: Database,
    trainer_image: BuiltImage,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    command = [HPO, "launch", "--study", "dock", "--workers", "2", "--trials", "10"]  # docker
    command += ["--runs-dir", str(tmp_path), "--seed", "1", "trainer.max_epochs=10"]
    launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        attrs = _inspect_workers(docker_client, "dock", 2)
        output, _ = launch.communicate(timeout=600)
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.communicate()
    assert launch.returncode == 0, output

    for container in attrs:
        config, host = container["Config"], container["HostConfig"]
        assert config["User"] not in ("", "0", "root", "0:0")
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["ReadonlyRootfs"] is True
        assert host["Init"] is True
        assert host["PidsLimit"] and host["PidsLimit"] > 0
        assert host["Memory"] > 0 and host["Memory"] == host["MemorySwap"]
        assert host["NanoCpus"] == int(CORES / 2 * 1e9)  # cores / workers, by default
        assert host["NetworkMode"] not in ("host", "default", "bridge")
        assert host["Privileged"] is False
        mounts = json.dumps(container["Mounts"])
        assert "docker.sock" not in mounts
        visible = json.dumps([config["Env"], config["Labels"], config["Cmd"], container["Args"]])
        assert database.password not in visible
        assert {"hpo.study", "hpo.worker", "hpo.launch"} <= set(config["Labels"])

    snapshot = read_study(database, "dock")
    assert snapshot.count(*FINISHED) == 10
    assert snapshot.count(TrialState.RUNNING) == 0
    assert {t.user_attrs["worker"] for t in snapshot.trials} == {0, 1}  # both did work
    hosts = {t.user_attrs["host"] for t in snapshot.trials}
    assert hosts <= {c["Config"]["Hostname"] for c in attrs}  # the trials ran in the containers
    # ... on the engine's machine: its name, not a container's id, says where (many machines).
    assert {t.user_attrs["machine"] for t in snapshot.trials} == {docker_client.info()["Name"]}
    logs = sorted(p.name for p in (tmp_path / "dock").glob("worker-*.log"))
    assert logs == ["worker-0.log", "worker-1.log"]
    labelled = {(t.user_attrs["worker"], t.user_attrs["log"]) for t in snapshot.trials}
    assert labelled == {(0, "worker-0.log"), (1, "worker-1.log")}  # each trial names its log
    for worker in (0, 1):
        log = (tmp_path / "dock" / f"worker-{worker}.log").read_text()
        _check_worker_log(log, worker, snapshot.trials)
    assert any((tmp_path / "dock").glob("trial-*/csv/metrics.csv"))
    left = docker_client.containers.list(
        all=True, ignore_removed=True, filters={"label": "hpo.study=dock"}
    )
    assert left == []


def _check_worker_log(text: str, worker: int, trials: list[optuna.trial.FrozenTrial]) -> None:
    """Threads match the CPU share; one line per trial, in the log of the worker that ran it."""
    assert "stopping: done" in text
    assert f"torch threads: {max(1, CORES // 2)}\n" in text
    assert "devices: cpu\n" in text
    for trial in trials:
        line = rf"trial {trial.number} {trial.state.name} in \d+\.\d s.*; parameters "
        ran_here = trial.user_attrs["worker"] == worker
        assert bool(re.search(line, text)) is ran_here, trial.number
    assert "GPU available" not in text  # Lightning's per-fit lines are not repeated


def test_cleanup_is_scoped_to_the_launch_and_gc_to_ended_workers(
    trainer_image: BuiltImage,
    docker_client: docker.DockerClient,
    instance: Instance,
    tmp_path: Path,
) -> None:
    def sleeper(labels: dict[str, str]) -> Container:
        command = ["python", "-c", "import time; time.sleep(120)"]
        return docker_client.containers.run(
            trainer_tag(), command, detach=True, labels=labels, network_mode="none"
        )

    worker = {**instance.labels, "hpo.study": "s", "hpo.worker": "0"}
    unrelated = sleeper({"purpose": "not hpo"})
    try:
        other = sleeper({**worker, "hpo.launch": "other-launch"})
        mine = sleeper({**worker, "hpo.launch": "this-launch"})
        backend = DockerBackend(
            docker_client,
            image=trainer_tag(),
            network="none",
            launch_id="this-launch",
            labels=instance.labels,
            resources=WorkerResources(cpus=1.0),
            secrets_dir=tmp_path / "secrets",
        )
        backend.cleanup()
        remaining = {c.id for c in docker_client.containers.list(all=True, ignore_removed=True)}
        assert mine.id not in remaining
        assert {unrelated.id, other.id} <= remaining

        result = CliRunner().invoke(app, ["gc"])  # `other` still runs: gc leaves it
        assert result.exit_code == 0
        assert other.id in {
            c.id for c in docker_client.containers.list(all=True, ignore_removed=True)
        }
        other.stop(timeout=1)
        assert "removed 1 ended worker container" in CliRunner().invoke(app, ["gc"]).output
        remaining = {c.id for c in docker_client.containers.list(all=True, ignore_removed=True)}
        assert other.id not in remaining
        assert unrelated.id in remaining
    finally:
        unrelated.remove(force=True)


def test_docker_kill_fails_the_trial_at_once_and_it_is_retried(
    database: Database,
    faults_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    hold, held = held_in_containers(faults_image, tmp_path, "dkill")  # the kill lands mid-trial
    command = [HPO, "launch", "--study", "dkill", "--workers", "2", "--trials", "4"]
    command += ["--runs-dir", str(tmp_path), "--heartbeat", "10", "--grace", "30"]
    command += ["--pruner", "none", *held]
    launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        victim = wait_for_running_trial(database, "dkill", worker=0)
        (container,) = docker_client.containers.list(
            filters={"label": ["hpo.study=dkill", "hpo.worker=0"]}
        )
        container.kill()
        wait_for_state(database, "dkill", victim, TrialState.FAIL, within=5)
        hold.unlink()  # the other worker runs the rest of the study, the retry among it
        output, _ = launch.communicate(timeout=600)
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.communicate()
    snapshot = read_study(database, "dkill")
    killed = next(t for t in snapshot.trials if t.number == victim)
    assert killed.user_attrs["fail_reason"] == "worker w0 died: exit 137"
    retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number
    assert [t.params for t in snapshot.trials if retried(t) == victim] == [killed.params]
    assert snapshot.count(*FINISHED) == 4
    assert snapshot.count(TrialState.RUNNING) == 0
    assert "w0 (exit 137)" in output
    assert (
        docker_client.containers.list(
            all=True, ignore_removed=True, filters={"label": "hpo.study=dkill"}
        )
        == []
    )


def test_ctrl_c_twice_still_removes_every_container_and_the_study_resumes(
    database: Database,
    faults_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    hold, held = held_in_containers(faults_image, tmp_path, "dint")  # the signal lands mid-trial
    command = [HPO, "launch", "--study", "dint", "--workers", "2", "--trials", "4"]
    command += ["--runs-dir", str(tmp_path), "--pruner", "none", *held]
    launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_running_trial(database, "dint", worker=0)
        started = time.monotonic()
        launch.send_signal(signal.SIGINT)
        time.sleep(0.05)  # the launcher is stopping the workers now
        launch.send_signal(signal.SIGINT)  # an impatient second Ctrl-C must not cut cleanup short
        output, _ = launch.communicate(timeout=60)
        assert time.monotonic() - started < 30
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.communicate()
    assert launch.returncode == 1, output
    assert (
        docker_client.containers.list(
            all=True, ignore_removed=True, filters={"label": "hpo.study=dint"}
        )
        == []
    )
    assert "stopping the workers" in output
    snapshot = read_study(database, "dint")
    assert snapshot.count(TrialState.RUNNING) == 0
    reasons = {
        t.user_attrs.get("fail_reason") for t in snapshot.trials if t.state is TrialState.FAIL
    }
    assert reasons == {"worker stopped (SIGTERM)"}
    hold.unlink()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert read_study(database, "dint").count(*FINISHED) == 4
