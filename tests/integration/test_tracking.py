"""W&B from worker containers: one offline run per trial and a study run; online, with and
without a network."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from optuna.trial import TrialState
from trainer.wandb_runs import run_id

from orchestrator.settings import Instance
from tests import wandb_server
from tests.conftest import WANDB_SETTINGS
from tests.integration.conftest import HPO, BuiltImage, Database, http_get, read_study
from tests.wandb_records import read_runs
from tests.wandb_server import KEY, STATE_PATH, RemoteStandIn, WandbStandIn

pytestmark = pytest.mark.integration
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
BOGUS_KEY = "hpocanary" + "k" * 36  # 45 characters: W&B wants 40+ (after any `prefix-`)


@pytest.fixture(scope="module")
def tracked(
    database: Database, trainer_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The runs folder of study `tracked`: 6 trials on 2 docker workers, W&B offline."""
    runs_dir = tmp_path_factory.mktemp("tracked-runs")
    command = [HPO, "launch", "--study", "tracked", "--workers", "2", "--trials", "6"]
    command += ["--runs-dir", str(runs_dir), "--seed", "3", "trainer.max_epochs=4"]
    with pytest.MonkeyPatch.context() as patch:  # function fixtures come later: as they set it
        for name in ("WANDB_API_KEY", *WANDB_SETTINGS):
            patch.delenv(name, raising=False)
        patch.setenv("NETRC", str(tmp_path_factory.mktemp("home") / "no-netrc"))
        patch.setenv("WANDB_ERROR_REPORTING", "false")  # as tests/conftest.py sets it
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return runs_dir


def test_every_trial_logs_an_offline_run_matching_postgres(
    database: Database, tracked: Path
) -> None:
    snapshot = read_study(database, "tracked")
    trials = {t.number: t for t in snapshot.trials}
    runs = read_runs(tracked / "tracked" / "wandb")
    trial_runs = [run for run in runs if run.job_type == "trial"]
    assert len(trial_runs) == 6 == snapshot.count(*FINISHED)
    assert {run.config["hpo"]["worker"] for run in trial_runs} == {0, 1}
    for run in trial_runs:
        trial = trials[run.config["hpo"]["trial"]]
        assert run.group == "tracked" and run.name == f"tracked-t{trial.number}"
        assert trial.user_attrs["wandb_run_id"] == run.id
        assert run.config["hpo"]["machine"] == trial.user_attrs["machine"]
        assert {name: run.config[name] for name in trial.params} == trial.params
        assert run.summary["state"] == trial.state.name
        pruned = trial.state is TrialState.PRUNED
        assert ("pruned" in run.tags) == pruned
        epochs = [h["epoch"] for h in run.history if "val_loss" in h]
        assert epochs == list(range(len(epochs))) and epochs  # one val_loss per epoch
        # Pruning stops a fit at its last validation, before that epoch's train_loss is logged.
        assert sum("train_loss" in h for h in run.history) == len(epochs) - pruned
        assert run.config["hpo"]["image"].startswith("hpo-trainer:latest@")
    (study_run,) = [run for run in runs if run.job_type == "study"]
    assert study_run.group == "tracked"
    assert study_run.history[-1]["trials/nrows"] == 6


def test_sync_uploads_each_ended_run_once_and_one_without_records_holds_none_back(
    database: Database, tracked: Path, tmp_path: Path, wandb_online: WandbStandIn
) -> None:
    wandb = shutil.copytree(tracked / "tracked", tmp_path / "tracked", symlinks=True) / "wandb"
    offline = {run.id: run for run in read_runs(wandb)}
    # Trial 5 as if its worker had been killed before W&B first wrote its records: its run file
    # holds the header alone. Given with others, `wandb sync` would upload none of them.
    killed = run_id("tracked", 5)
    (killed_file,) = wandb.glob(f"offline-run-*-{killed}/run-{killed}.wandb")
    killed_file.write_bytes(killed_file.read_bytes()[:7])
    trials = [trial for trial in read_study(database, "tracked").trials if trial.number != 5]
    command = [HPO, "sync", "tracked", "--runs-dir", str(tmp_path)]
    here = tmp_path / "here"  # where the user runs it
    here.mkdir()
    first = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, cwd=here
    )
    upserts = {ident: run.upserts for ident, run in wandb_online.runs.items()}
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    assert first.returncode == 0, first.stdout + first.stderr
    assert not list(here.iterdir())  # `wandb sync` keeps its logs in the study's folder
    assert f"uploaded 6 W&B run(s) of tracked to {wandb_online.url}" in first.stdout
    assert "warning: 1 W&B run(s) (trial 5) not uploaded: no records." in first.stderr
    study_run = run_id("tracked", "study")
    ran = {trial.user_attrs["wandb_run_id"] for trial in trials}
    assert set(wandb_online.runs) == ran | {study_run}
    for trial in trials:
        sent = wandb_online.runs[trial.user_attrs["wandb_run_id"]]
        kept = offline[sent.id]
        assert (sent.group, sent.name, sent.job_type) == ("tracked", kept.name, "trial")
        assert {name: sent.param(name) for name in trial.params} == trial.params
        assert [row.get("val_loss") for row in sent.history] == [
            row.get("val_loss") for row in kept.history
        ]
        assert sent.summary["state"] == trial.state.name
        assert sent.exit_code == (1 if trial.state is TrialState.FAIL else 0)
    assert wandb_online.runs[study_run].job_type == "study"
    assert wandb_online.runs[study_run].history[-1]["trials"]["nrows"] == 6
    assert wandb_online.keys == {KEY}  # the key reached W&B, and W&B alone (see below)
    assert KEY not in first.stdout + first.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    assert "uploaded 0 W&B run(s) of tracked" in again.stdout
    assert "; 6 uploaded before" in again.stdout
    assert {ident: run.upserts for ident, run in wandb_online.runs.items()} == upserts


@pytest.mark.usefixtures("trainer_image")
@pytest.mark.parametrize("key_from", ["environment", "wandb login"])
def test_online_without_network_still_completes_and_hides_the_key(
    database: Database,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key_from: str,
) -> None:
    if key_from == "environment":
        monkeypatch.setenv("WANDB_API_KEY", BOGUS_KEY)
    else:  # the netrc entry `wandb login` writes (NETRC moves it from ~/.netrc into the test)
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1:9\n  login user\n  password {BOGUS_KEY}\n")
        monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens: no network
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")  # W&B's own setting: it reaches the worker
    study = "nonet-env" if key_from == "environment" else "nonet-netrc"
    command = [HPO, "launch", "--study", study, "--workers", "1", "--trials", "1"]
    command += ["--runs-dir", str(tmp_path), "trainer.max_epochs=2"]
    launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    inspected = ""
    try:
        deadline = time.monotonic() + 120
        while not inspected and time.monotonic() < deadline:
            for container in docker_client.containers.list(
                ignore_removed=True, filters={"label": f"hpo.study={study}"}
            ):
                inspected = json.dumps(container.attrs)
            time.sleep(0.2)
        output, _ = launch.communicate(timeout=600)
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.communicate()
    assert launch.returncode == 0, output
    assert "(WANDB_BASE_URL) is on this host's loopback, which worker containers" in output
    assert read_study(database, study).count(TrialState.COMPLETE) == 1
    log = (tmp_path / study / "worker-0.log").read_text()
    assert "W&B online failed (Timed out" in log  # it had the key: the network failed it
    (trial_run,) = [r for r in read_runs(tmp_path / study / "wandb") if r.job_type == "trial"]
    assert trial_run.id == run_id(study, 0)  # the trial kept its run, offline
    assert inspected and BOGUS_KEY not in inspected
    assert "/run/secrets/hpo-netrc" in inspected  # it reached the worker as a file
    assert '"WANDB_INIT_TIMEOUT=3"' in inspected
    assert '"WANDB_ERROR_REPORTING=false"' in inspected  # the tests' setting reached it too
    for path in (tmp_path / study).rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            assert BOGUS_KEY.encode() not in path.read_bytes(), path
    assert BOGUS_KEY not in output
    attrs = json.dumps([t.user_attrs for t in read_study(database, study).trials])
    assert BOGUS_KEY not in attrs


def test_with_a_key_every_run_goes_online_as_its_trial_runs(
    database: Database, tmp_path: Path, wandb_online: WandbStandIn
) -> None:
    command = [HPO, "launch", "--backend", "local", "--study", "online", "--workers", "1"]
    command += ["--trials", "2", "--runs-dir", str(tmp_path), "--pruner", "none"]
    command += ["trainer.max_epochs=3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    _assert_every_run_went_online(database, "online", result, wandb_online, tmp_path)


@pytest.fixture
def wandb_on_the_network(
    database: Database,
    trainer_image: BuiltImage,
    docker_client: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RemoteStandIn]:
    """W&B with a key (``KEY``), online at the stand-in served from a container on the network
    of the workers and Postgres: the stand-in on this host's 127.0.0.1 is out of the workers'
    reach, while a container's address there is reached from both them and this host."""
    instance = Instance.from_env()  # the database fixture's
    script = Path(wandb_server.__file__)
    container = docker_client.containers.run(
        trainer_image.image_id,
        ["python", f"/opt/stand-in/{script.name}", "8080"],
        volumes={str(script): {"bind": f"/opt/stand-in/{script.name}", "mode": "ro"}},
        name=f"{instance.name}-wandb",
        network=instance.network,
        labels=instance.labels,  # removed with the instance if this test is cut off
        detach=True,
    )
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][instance.network]["IPAddress"]
        server = RemoteStandIn(f"http://{address}:8080")
        http_get(server.url + STATE_PATH)  # once it listens
        assert server.keys == set(), container.logs().decode()
        monkeypatch.setenv("WANDB_API_KEY", KEY)
        monkeypatch.setenv("WANDB_BASE_URL", server.url)
        yield server
    finally:
        container.remove(force=True)


def test_docker_workers_with_a_key_send_every_run_online(
    database: Database, tmp_path: Path, wandb_on_the_network: RemoteStandIn
) -> None:
    command = [HPO, "launch", "--study", "dk-online", "--workers", "2", "--trials", "4"]
    command += ["--runs-dir", str(tmp_path), "--pruner", "none", "trainer.max_epochs=3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    _assert_every_run_went_online(database, "dk-online", result, wandb_on_the_network, tmp_path)


def _assert_every_run_went_online(
    database: Database,
    study: str,
    launch: subprocess.CompletedProcess[str],
    server: WandbStandIn | RemoteStandIn,
    runs_dir: Path,
) -> None:
    """Each trial's run, with its params, rows, state and worker, and the study run reached the
    server with the key, live: no warning, nothing left offline to sync, the key never shown."""
    output = launch.stdout + launch.stderr
    assert launch.returncode == 0, output
    trials = read_study(database, study).trials
    runs = server.runs
    assert set(runs) == {trial.user_attrs["wandb_run_id"] for trial in trials} | {
        run_id(study, "study")
    }
    for trial in trials:
        sent = runs[trial.user_attrs["wandb_run_id"]]
        assert (sent.group, sent.name, sent.job_type) == (
            study,
            f"{study}-t{trial.number}",
            "trial",
        )
        assert {name: sent.param(name) for name in trial.params} == trial.params
        assert sent.param("hpo")["worker"] == trial.user_attrs["worker"]
        assert [row["epoch"] for row in sent.history if "val_loss" in row] == [0, 1, 2]
        assert (sent.summary["state"], sent.exit_code) == ("COMPLETE", 0)
    study_run = runs[run_id(study, "study")]
    assert study_run.history[-1]["trials"]["nrows"] == len(trials)
    assert study_run.summary["n_complete"] == len(trials) and study_run.exit_code == 0
    assert "warning" not in output
    assert not list((runs_dir / study / "wandb").glob("offline-run-*"))  # nothing to sync
    assert server.keys == {KEY}
    logs = "".join(log.read_text() for log in (runs_dir / study).glob("worker-*.log"))
    assert logs and KEY not in output + logs
