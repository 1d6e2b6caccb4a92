"""The ``hpo`` command's surface: help, listing, and exit code 2 with one line for bad input."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.commands import launch as launch_command
from orchestrator.commands import workers

runner = CliRunner()


def test_help_lists_commands_and_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "experiments" in result.output
    assert "Exit codes" in result.output


@pytest.mark.parametrize("command", [["logs"], ["image", "postgres"]])
def test_help_paragraphs_flow_at_the_terminals_width(command: list[str]) -> None:
    # Wide enough for each paragraph on one line: a break inside one came from the source.
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    head = result.output.split("╭")[0]  # before the first box of options
    prose = [line.strip() for line in head.splitlines() if line.strip()]
    assert len(prose) == 3, prose  # usage, the first paragraph, the second paragraph


def test_logs_reads_the_worker_files_and_names_the_workers_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "_containers_of", lambda study, worker: [])  # no engine: files
    for worker in (0, 1):
        (tmp_path / "s").mkdir(exist_ok=True)
        (tmp_path / "s" / f"worker-{worker}.log").write_text(f"line of w{worker}\n")
    (tmp_path / "s" / "worker-1.2.log").write_text("line of a second launch's w1\n")
    shown = runner.invoke(app, ["logs", "s", "--runs-dir", str(tmp_path)])
    assert shown.exit_code == 0
    assert shown.output.splitlines() == [
        "worker-0| line of w0",
        "worker-1| line of w1",
        "worker-1.2| line of a second launch's w1",
    ]
    one = runner.invoke(app, ["logs", "s", "--worker", "1", "--runs-dir", str(tmp_path)])
    assert one.output.splitlines() == [
        "worker-1| line of w1",
        "worker-1.2| line of a second launch's w1",
    ]
    missing = runner.invoke(app, ["logs", "s", "--worker", "5", "--runs-dir", str(tmp_path)])
    assert missing.exit_code == 2
    assert missing.output.strip().endswith("its workers: 0, 1 (`--worker`).")


def test_logs_follow_ends_once_the_studys_workers_here_have_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "_containers_of", lambda study, worker: [])  # local workers
    monkeypatch.setattr(workers, "FOLLOW_POLL_S", 0.0)
    log = tmp_path / "s" / "worker-0.log"
    log.parent.mkdir()
    log.write_text("trial 0 COMPLETE\ntrial 1 COMPL")  # its last line half written

    def append(path: Path, text: str) -> None:
        with path.open("a") as f:
            f.write(text)

    later = [  # what the workers write before each poll
        lambda: None,
        lambda: [append(log, "ETE\n"), append(log.with_name("worker-1.log"), "w1 restarted\n")],
        lambda: append(log, "stopping: done\n"),  # as it ends
    ]

    def workers_here(study: str, instance: str) -> list[int]:
        if not later:
            return []
        later.pop(0)()
        return [4242]

    monkeypatch.setattr(workers, "find_local_workers", workers_here)
    shown = runner.invoke(app, ["logs", "s", "--follow", "--runs-dir", str(tmp_path)])
    assert shown.exit_code == 0
    assert shown.output.splitlines() == [
        "trial 0 COMPLETE",
        "worker-0| trial 1 COMPLETE",
        "worker-1| w1 restarted",
        "worker-0| stopping: done",
    ]


def test_experiments_lists_digits() -> None:
    result = runner.invoke(app, ["experiments"])
    assert result.exit_code == 0
    assert "digits_mlp" in result.output.split()


def test_config_prints_the_composed_yaml() -> None:
    result = runner.invoke(app, ["config", "digits_mlp", "model.depth=3"])
    assert result.exit_code == 0
    assert "depth: 3" in result.output


def test_config_resolve_of_an_interpolation_only_a_run_has_is_one_line() -> None:
    override = "trainer.default_root_dir=${hydra:runtime.output_dir}"
    result = runner.invoke(app, ["config", "digits_mlp", override, "--resolve"])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: `trainer.default_root_dir`: ")
    assert line.endswith("HydraConfig was not set (drop --resolve)")


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["launch"], "--config-dir"),
        (["launch"], "--runs-dir"),
        (["experiments"], "--config-dir"),
        (["config", "digits_mlp"], "--config-dir"),
        (["report", "s"], "--out"),
        (["report", "s"], "--runs-dir"),
        (["retrain", "s"], "--runs-dir"),
        (["logs", "s"], "--runs-dir"),
        (["sync", "s"], "--runs-dir"),
        (["image", "build"], "--source"),
    ],
)
def test_an_empty_path_is_refused_not_read_as_the_current_folder(
    command: list[str], option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where an empty path would have put (or looked for) things
    result = runner.invoke(app, [*command, option, ""], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': is empty" in result.output
    assert list(tmp_path.iterdir()) == []


def test_bad_experiment_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["config", "nope"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: unknown experiment `nope`; choose one of: digits_mlp, entropy."
    ]


def test_orchestrator_does_not_import_torch() -> None:
    code = "import sys, orchestrator.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dashboard_on_a_port_in_use_is_one_line_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An unreachable storage proves the port is checked first, before any connection.
    monkeypatch.setenv("HPO_STORAGE", "postgresql+psycopg://hpo:x@127.0.0.1:9/hpo")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["dashboard", "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.output
    assert "choose another `--port`" in result.output


def test_dashboard_on_an_address_not_of_this_machine_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HPO_STORAGE", "postgresql+psycopg://hpo:x@127.0.0.1:9/hpo")
    result = runner.invoke(app, ["dashboard", "--host", "192.0.2.1"])  # TEST-NET-1
    assert result.exit_code == 2
    assert "choose another `--host`" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["report", "s", "--out", "/dev/null/report"],
        ["wandb", "s", "--runs-dir", "/dev/null/runs"],
    ],
)
def test_a_folder_that_cannot_be_made_is_one_line_before_the_database(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPO_STORAGE", "postgresql+psycopg://hpo:x@127.0.0.1:9/hpo")
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "cannot write in `/dev/null/" in result.output
    assert "(Not a directory); pass another `--" in result.output


def test_launch_refuses_a_storage_on_this_hosts_loopback_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # any engine call fails
    url = "postgresql+psycopg://hpo:pw@localhost:5432/hpo"
    result = runner.invoke(app, ["launch", "--storage", url, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith("error: `--storage` names `localhost`, which inside a worker")
    assert "pw" not in result.output
    assert not list(tmp_path.iterdir())  # nothing started, not even the study's folder


@pytest.mark.parametrize(
    ("base_url", "warned"),
    [
        ("http://localhost:8080", True),
        ("http://127.0.0.1:8080", True),
        ("http://wandb.internal:8080", False),
        (None, False),  # W&B's cloud
    ],
)
def test_a_wandb_server_on_loopback_is_named_once_before_docker_workers_start(
    base_url: str | None,
    warned: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    if base_url is None:
        monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("WANDB_BASE_URL", base_url)
    launch_command._warn_of_a_wandb_server_on_loopback("s")
    err = capsys.readouterr().err
    assert ("worker containers cannot reach" in err) is warned
    if warned:
        assert f"warning: W&B's server {base_url} (WANDB_BASE_URL)" in err
        assert "`hpo sync s` uploads them" in err


def test_no_loopback_warning_when_workers_would_log_offline_anyway(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", "http://localhost:8080")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_MODE", "offline")
    launch_command._warn_of_a_wandb_server_on_loopback("s")
    assert capsys.readouterr().err == ""
