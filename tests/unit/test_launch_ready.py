"""A launch starts its workers before the study is ready; they wait for it, a refusal stops them.

Its id also labels its workers' trials, which tells them from another launch's.
"""

from __future__ import annotations

import io
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from trainer import worker
from trainer.errors import HpoError
from trainer.spec import (
    SPEC_ATTR,
    ExperimentSpec,
    is_launch_worker,
    ready_attr,
)

from orchestrator import launch as launcher
from orchestrator.all_at_once import each_at_once
from orchestrator.backends import WorkerHandle, WorkerSpec, WorkerState
from tests.specs import digits_spec

URL = "postgresql+psycopg://hpo@127.0.0.1:9/hpo"


class _RecordingBackend:
    """Records what it was asked to start and stop; its workers run until stopped."""

    name = "fake"
    machine = "fake-host"

    def __init__(self) -> None:
        self.started: list[WorkerSpec] = []
        self.stopped: list[str] = []
        self.cleaned = False

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        self.started.append(spec)
        return WorkerHandle(id=f"{spec.worker_id}.{len(self.started)}", name=spec.name, backend="")

    def poll(self, handle: WorkerHandle) -> WorkerState:
        return WorkerState.STOPPED if handle.id in self.stopped else WorkerState.RUNNING

    def stop(self, handle: WorkerHandle, timeout_s: float = 10.0) -> None:
        self.stopped.append(handle.id)

    def cleanup(self) -> None:
        self.cleaned = True

    def logs(self, handle: WorkerHandle, tail: int = 200) -> str:
        return ""

    def wait(self, timeout_s: float) -> None:
        pass

    def exit_reason(self, handle: WorkerHandle) -> str:
        return "stopped"


@pytest.fixture(scope="module")
def spec() -> ExperimentSpec:
    return digits_spec()


def _plan(tmp_path: Path, workers: int = 2) -> launcher.LaunchPlan:
    return launcher.LaunchPlan("s", URL, URL, workers, tmp_path, launch_id="L1")


def test_nothing_to_run_stops_the_workers_started_meanwhile(
    spec: ExperimentSpec, tmp_path: Path
) -> None:
    backend = _RecordingBackend()
    started_when_ready: list[int] = []

    def ready() -> bool:
        started_when_ready.append(len(backend.started))
        return False

    console = Console(file=io.StringIO())
    assert launcher.run(_plan(tmp_path), spec, backend, console, ready=ready) is None
    assert started_when_ready == [2]  # the study is readied while every worker starts
    assert [s.launch for s in backend.started] == ["L1", "L1"]  # ...and they wait for it
    assert sorted(handle.split(".")[0] for handle in backend.stopped) == ["0", "1"]
    assert backend.cleaned


def test_a_refusal_while_readying_stops_the_workers_and_is_raised(
    spec: ExperimentSpec, tmp_path: Path
) -> None:
    backend = _RecordingBackend()

    def refuse() -> bool:
        raise HpoError("study `s` exists with another spec")

    console = Console(file=io.StringIO())
    with pytest.raises(HpoError, match="another spec"):
        launcher.run(_plan(tmp_path), spec, backend, console, ready=refuse)
    assert sorted(handle.split(".")[0] for handle in backend.stopped) == ["0", "1"]
    assert backend.cleaned


class _StartsTogetherBackend(_RecordingBackend):
    """Each start blocks until every worker's start has begun: started in turn, none ends."""

    def __init__(self, workers: int) -> None:
        super().__init__()
        self.together = threading.Barrier(workers, timeout=10)

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        self.together.wait()  # BrokenBarrierError after 10 s if the starts were not concurrent
        return super().start(spec)


def test_the_workers_start_side_by_side(spec: ExperimentSpec, tmp_path: Path) -> None:
    backend = _StartsTogetherBackend(workers=3)
    console = Console(file=io.StringIO())
    launcher.run(_plan(tmp_path, workers=3), spec, backend, console, ready=lambda: False)
    assert sorted(s.worker_id for s in backend.started) == [0, 1, 2]


class _FirstStartsLastBackend(_RecordingBackend):
    """Worker 0's start ends only once every other worker's has."""

    def __init__(self, workers: int) -> None:
        super().__init__()
        self.others = threading.Barrier(workers - 1, timeout=10)
        self.others_done = threading.Event()

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        if spec.worker_id == 0:
            assert self.others_done.wait(timeout=10)
            return super().start(spec)
        handle = super().start(spec)
        if self.others.wait() == 0:
            self.others_done.set()
        return handle


def test_the_workers_keep_their_order_however_their_starts_end(tmp_path: Path) -> None:
    backend = _FirstStartsLastBackend(workers=3)
    fleet = launcher._Fleet(_plan(tmp_path, workers=3), backend)
    each_at_once(fleet.start, range(3))
    assert backend.started[-1].worker_id == 0
    assert list(fleet.states) == [0, 1, 2]  # the live view's rows and the summary's order


def test_a_restarted_worker_does_not_wait_for_its_launch(tmp_path: Path) -> None:
    backend = _RecordingBackend()
    fleet = launcher._Fleet(_plan(tmp_path, workers=1), backend)
    fleet.start(0)
    fleet.start(0)  # a restart: the study was ready long ago, maybe for a later launch by now
    assert [s.wait_ready for s in backend.started] == [True, False]
    assert backend.started[0].launch_args == ["--launch", "L1", "--wait-ready"]
    assert backend.started[1].launch_args == ["--launch", "L1"]  # its trials: still L1's


def test_workers_are_told_the_machine_they_run_on(tmp_path: Path) -> None:
    backend = _RecordingBackend()
    plan = replace(_plan(tmp_path, workers=1), machine="gpu-2")
    launcher._Fleet(plan, backend).start(0)
    assert backend.started[0].launch_args == [
        "--machine",
        "gpu-2",
        "--launch",
        "L1",
        "--wait-ready",
    ]


class _Engine:
    def dispose(self) -> None:
        pass


class _Study:
    """The storage calls a worker makes before its spec; the study appears, then is readied."""

    engine = _Engine()

    def __init__(self, exists_after: int, ready_after: int | None) -> None:
        self.reads = 0
        self.exists_after = exists_after
        self.ready_after = ready_after

    def get_study_id_from_name(self, name: str) -> int:
        self.reads += 1
        if self.reads <= self.exists_after:
            raise KeyError(name)
        return 7

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return {SPEC_ATTR: "{}"}

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        ready = self.ready_after is not None and self.reads > self.ready_after
        return {ready_attr("L1"): 1.0} if ready else {ready_attr("L0"): 1.0}


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "READY_POLL_S", 0.001)
    monkeypatch.setattr(worker, "READY_WAIT_S", 0.2)


def _read(monkeypatch: pytest.MonkeyPatch, study: _Study, launch: str | None) -> Any:
    monkeypatch.setattr(worker, "open_storage", lambda url, name: study)
    return worker._read_study(URL, "s", launch)


@pytest.mark.usefixtures("quick_polls")
def test_a_worker_waits_for_the_study_to_exist_and_be_ready_for_its_launch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = _Study(exists_after=3, ready_after=6)  # another launch's readiness does not count
    assert _read(monkeypatch, study, "L1") == (7, {SPEC_ATTR: "{}"})
    assert study.reads == 7


@pytest.mark.usefixtures("quick_polls")
def test_a_worker_whose_launch_never_readies_the_study_ends_with_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(HpoError, match=r"not made ready for launch L1 within 0 s: its launcher"):
        _read(monkeypatch, _Study(exists_after=0, ready_after=None), "L1")


def test_a_worker_told_no_launch_reads_at_once_and_names_a_missing_study(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _read(monkeypatch, _Study(exists_after=0, ready_after=None), None)[0] == 7
    with pytest.raises(HpoError, match="no study `s` in the database"):
        _read(monkeypatch, _Study(exists_after=1, ready_after=None), None)


def test_a_trial_is_a_launch_workers_by_its_launch_label_too() -> None:
    def labelled(**labels: object) -> FrozenTrial:
        return optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs=labels)

    this, other = labelled(worker=0, launch="L1"), labelled(worker=0, launch="L2")
    assert is_launch_worker(this, "L1", 0)
    assert not is_launch_worker(other, "L1", 0)  # another machine's worker 0
    assert not is_launch_worker(this, "L1", 1)
    assert is_launch_worker(labelled(worker=0), "L1", 0)  # a worker started by hand
