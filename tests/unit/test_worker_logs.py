"""Worker logs: one writer per file, so two launches side by side never share one."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.worker_logs import WorkerLogs, open_worker_log, worker_log_paths, worker_of


def test_a_held_log_sends_the_next_writer_of_that_worker_to_a_file_of_its_own(
    tmp_path: Path,
) -> None:
    first = open_worker_log(tmp_path, 0)
    second = open_worker_log(tmp_path, 0)
    other_worker = open_worker_log(tmp_path, 1)
    assert [Path(f.name).name for f in (first, second, other_worker)] == [
        "worker-0.log",
        "worker-0.2.log",
        "worker-1.log",
    ]
    first.close()
    with open_worker_log(tmp_path, 0) as later:  # the first launch ended: its file again
        assert Path(later.name).name == "worker-0.log"
    second.close()
    other_worker.close()


def test_a_worker_process_keeps_its_log_held_after_its_launcher_lets_go(tmp_path: Path) -> None:
    with open_worker_log(tmp_path, 0) as log:
        worker = subprocess.Popen(["sleep", "30"], stdout=log)
    try:
        with open_worker_log(tmp_path, 0) as beside:
            assert Path(beside.name).name == "worker-0.2.log"
    finally:
        worker.kill()
        worker.wait()
    with open_worker_log(tmp_path, 0) as after:
        assert Path(after.name).name == "worker-0.log"


def test_a_restarted_worker_goes_on_in_its_launchs_file(tmp_path: Path) -> None:
    logs = WorkerLogs()
    assert logs.of(tmp_path, 2) is logs.of(tmp_path, 2)
    logs.close()
    with open_worker_log(tmp_path, 2) as free:
        assert Path(free.name).name == "worker-2.log"


def test_logs_are_listed_by_worker_then_copy(tmp_path: Path) -> None:
    for name in ("worker-10.log", "worker-2.log", "worker-2.2.log", "worker-2.10.log", "x.log"):
        (tmp_path / name).touch()
    assert [p.name for p in worker_log_paths(tmp_path)] == [
        "worker-2.log",
        "worker-2.2.log",
        "worker-2.10.log",
        "worker-10.log",
    ]
    assert [p.name for p in worker_log_paths(tmp_path, 10)] == ["worker-10.log"]
    assert worker_of(tmp_path / "worker-2.10.log") == (2, 10)
    assert worker_of(tmp_path / "worker-a.log") is None
