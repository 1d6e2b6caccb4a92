"""Ctrl-C and SIGTERM stop a launch between its steps, and every worker is stopped at once."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from trainer.signals import SignalledStop

from orchestrator.backends import WorkerHandle, WorkerSpec, WorkerState
from orchestrator.launch import LaunchPlan, _Fleet


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_is_recorded_not_raised_and_the_old_handler_comes_back(signum: int) -> None:
    before = signal.getsignal(signum)
    with SignalledStop().installed() as stop:
        os.kill(os.getpid(), signum)  # would end pytest, or raise here, were the handler not ours
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            stop.check()
    assert signal.getsignal(signum) is before


def test_sleep_ends_at_once_when_a_stop_comes() -> None:
    stop = SignalledStop()
    stop.sleep(0.01)  # nothing asked: an ordinary sleep
    threading.Timer(0.05, stop.set).start()
    with pytest.raises(KeyboardInterrupt):
        stop.sleep(60)  # the test would hang for a minute if the stop were not seen


class _SlowToStopBackend:
    """Each stop blocks until every worker's stop has begun: stopped one by one, it never ends."""

    name = "fake"
    machine = "fake-host"

    def __init__(self, workers: int, failing: int | None = None) -> None:
        self.together = threading.Barrier(workers, timeout=10)
        self.failing = failing
        self.stopped: list[str] = []
        self.cleaned = False

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        return WorkerHandle(id=str(spec.worker_id), name=spec.name, backend=self.name)

    def poll(self, handle: WorkerHandle) -> WorkerState:
        return WorkerState.RUNNING

    def stop(self, handle: WorkerHandle, timeout_s: float = 10.0) -> None:
        self.together.wait()  # BrokenBarrierError after 10 s if the stops were not concurrent
        if handle.id == str(self.failing):
            raise RuntimeError(f"engine refused to stop {handle.name}")
        self.stopped.append(handle.id)

    def cleanup(self) -> None:
        self.cleaned = True


def _fleet(backend: _SlowToStopBackend, workers: int, tmp_path: Path) -> _Fleet:
    plan = LaunchPlan("s", "postgresql://h/db", "postgresql://h/db", workers, tmp_path)
    fleet = _Fleet(plan, backend, lambda worker, reason: None)  # type: ignore[arg-type]
    for worker in range(workers):
        fleet.start(worker)
    return fleet


def test_every_worker_is_stopped_at_once_then_cleaned_up(tmp_path: Path) -> None:
    backend = _SlowToStopBackend(workers=3)
    _fleet(backend, 3, tmp_path).stop_all()
    assert sorted(backend.stopped) == ["0", "1", "2"]
    assert backend.cleaned


def test_one_workers_error_spares_neither_the_others_nor_the_cleanup(tmp_path: Path) -> None:
    backend = _SlowToStopBackend(workers=3, failing=1)
    with pytest.raises(RuntimeError, match="refused to stop hpo-s-w1"):
        _fleet(backend, 3, tmp_path).stop_all()
    assert sorted(backend.stopped) == ["0", "2"]
    assert backend.cleaned
