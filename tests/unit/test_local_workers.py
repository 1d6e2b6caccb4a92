"""``hpo stop`` finds a study's local workers by command line and instance, and stops them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orchestrator.backends import find_local_workers, terminate


def _process(proc: Path, pid: int, argv: list[str], environ: dict[str, str]) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "cmdline").write_bytes("\0".join(argv).encode() + b"\0")
    pairs = [f"{key}={value}" for key, value in environ.items()]
    (folder / "environ").write_bytes("\0".join(pairs).encode() + b"\0")


def test_workers_are_found_by_study_and_instance(tmp_path: Path) -> None:
    worker = ["python", "-m", "trainer.worker", "--study", "s", "--worker-id", "0"]
    _process(tmp_path, 10, worker, {"HOME": "/root"})  # the default instance
    _process(tmp_path, 11, worker, {"HPO_INSTANCE": "hpo-test-1"})  # a test's
    _process(tmp_path, 12, [*worker[:4], "s2", "--worker-id", "0"], {})  # another study
    _process(tmp_path, 13, ["hpo", "launch", "--study", "s"], {})  # its launcher
    _process(tmp_path, 14, ["vim", "-m", "trainer.worker", "--study", "s"], {})
    (tmp_path / "self").mkdir()
    (tmp_path / "15").mkdir()  # ended while listed: no cmdline to read
    assert find_local_workers("s", "hpo", tmp_path) == [10, 14]
    assert find_local_workers("s", "hpo-test-1", tmp_path) == [11]
    assert find_local_workers("s", "hpo", tmp_path / "absent") == []


def test_terminate_signals_each_and_waits_until_they_end() -> None:
    code = "import signal, time; {}; print('ready', flush=True); time.sleep(60)"
    ignoring = "signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    sleepers = [
        subprocess.Popen([sys.executable, "-c", code.format(handler)], stdout=subprocess.PIPE)
        for handler in ("pass", ignoring)
    ]
    try:
        for process in sleepers:
            assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        assert terminate([p.pid for p in sleepers], timeout_s=1.0) == 2
        assert [p.wait(timeout=5) for p in sleepers] == [-15, -9]  # SIGTERM; SIGKILL after 1 s
        assert terminate([sleepers[0].pid], timeout_s=1.0) == 0  # reaped: gone
    finally:
        for process in sleepers:
            process.kill()
            if process.stdout is not None:
                process.stdout.close()
