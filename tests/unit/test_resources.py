"""A worker's share of the machine, and the checks that refuse a launch before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.backends import (
    LocalBackend,
    WorkerResources,
    WorkerSpec,
    check_capacity,
    check_gpus,
    gpu_ids,
    host_gpu_ids,
    visible_gpus,
)
from orchestrator.commands._backend import BackendName, make_backend
from orchestrator.errors import ConfigError

GIB = 2**30
ENGINE = {"MemTotal": 16 * GIB, "NCPU": 8, "Runtimes": {"runc": {}}}


@pytest.mark.parametrize(
    ("memory", "size"), [("512m", 512 * 2**20), ("2g", 2 * GIB), ("1G", GIB), ("2gb", 2 * GIB)]
)
def test_memory_is_read_as_docker_reads_it(memory: str, size: int) -> None:
    assert WorkerResources(cpus=1, memory=memory).memory_bytes == size


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"memory": "2GiB"}, "`--memory-per-worker` '2GiB' is not a size"),
        ({"memory": "-1g"}, "must be >= 6m"),
        ({"memory": "lots"}, "is not a size; use e.g. 512m or 2g"),
        ({"memory": "1m"}, "must be >= 6m"),
        ({"cpus": 0.001}, "`--cpus-per-worker` must be >= 0.01"),
    ],
)
def test_bad_shares_are_one_line(kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        WorkerResources(**{"cpus": 1.0, **kwargs})  # type: ignore[arg-type]


def test_workers_that_fit_pass() -> None:
    check_capacity(ENGINE, WorkerResources(cpus=2, memory="4g"), workers=4, gpus=0)
    # `--gpus` needs the toolkit's hook, not a registered `nvidia` runtime: the engine is asked
    # (check_gpu_access), not `docker info`'s runtimes.
    check_capacity(ENGINE, WorkerResources(cpus=2, gpus=1), workers=2, gpus=1)


@pytest.mark.parametrize(
    ("resources", "workers", "gpus", "engine", "expected"),
    [
        (WorkerResources(cpus=1, memory="6g"), 3, 0, ENGINE, r"3 workers x 6g = 18.0 GiB"),
        (WorkerResources(cpus=9), 1, 0, ENGINE, "more than the engine's 8 CPUs"),
        (WorkerResources(cpus=1, gpus=1), 1, 0, ENGINE, "no NVIDIA GPU on this machine"),
        (WorkerResources(cpus=1, gpus=3), 1, 2, ENGINE, "more than the 2 GPU"),
    ],
)
def test_launches_that_do_not_fit_are_refused(
    resources: WorkerResources, workers: int, gpus: int, engine: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        check_capacity(engine, resources, workers, gpus)


def test_gpus_are_dealt_round_robin() -> None:
    assert [gpu_ids(k, 1, 2) for k in range(4)] == [["0"], ["1"], ["0"], ["1"]]
    assert [gpu_ids(k, 2, 4) for k in range(3)] == [["0", "1"], ["2", "3"], ["0", "1"]]
    assert gpu_ids(0, 0, 4) == []


def test_gpus_are_counted_from_the_driver(tmp_path: Path) -> None:
    assert visible_gpus(tmp_path / "absent") == 0
    for bus in ("0000:17:00.0", "0000:65:00.0"):
        (tmp_path / bus).mkdir()
    assert visible_gpus(tmp_path) == 2


def test_local_gpus_are_a_schedulers_share_where_the_launcher_has_one(tmp_path: Path) -> None:
    for bus in ("0000:17:00.0", "0000:65:00.0", "0000:b3:00.0"):
        (tmp_path / bus).mkdir()
    assert host_gpu_ids({}, tmp_path) == ["0", "1", "2"]
    assert host_gpu_ids({"CUDA_VISIBLE_DEVICES": "2, 1"}, tmp_path) == ["2", "1"]
    assert host_gpu_ids({"CUDA_VISIBLE_DEVICES": ""}, tmp_path) == []


def test_local_workers_see_only_the_gpus_dealt_to_them(tmp_path: Path) -> None:
    share = LocalBackend(gpus_per_worker=1, gpus=["2", "3"])
    assert [share.gpus_of(k) for k in range(3)] == [["2"], ["3"], ["2"]]
    assert LocalBackend(gpus_per_worker=2, gpus=["5", "6"]).gpus_of(1) == ["5", "6"]
    # None asked for: none seen, so trials (`accelerator: auto`) train on the CPU.
    assert LocalBackend(gpus=["0", "1"]).gpus_of(0) == []
    worker = WorkerSpec("s", 1, "postgresql://db/s", tmp_path, threads=2)
    environment = share.environment(worker)
    assert environment["CUDA_VISIBLE_DEVICES"] == "3"
    assert (environment["OMP_NUM_THREADS"], environment["HPO_STORAGE"]) == (
        "2",
        "postgresql://db/s",
    )
    assert LocalBackend().environment(worker)["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.parametrize(
    ("per_worker", "gpus", "expected"),
    [(1, 0, "no NVIDIA GPU on this machine"), (3, 2, "more than the 2 GPU")],
)
def test_local_gpus_asked_for_must_be_there(per_worker: int, gpus: int, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        check_gpus(per_worker, gpus)
    check_gpus(0, 0)
    check_gpus(per_worker, per_worker)


def test_local_gpus_hidden_by_the_launchers_environment_are_named_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ConfigError, match=r"GPU on this machine \(CUDA_VISIBLE_DEVICES names none"):
        make_backend(
            BackendName.local, "s", "unused", WorkerResources(cpus=1, gpus=1), 1, launch_id="l"
        )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    backend = make_backend(
        BackendName.local, "s", "unused", WorkerResources(cpus=1, gpus=1), 1, launch_id="l"
    )
    assert isinstance(backend, LocalBackend)
    assert backend.gpus_of(0) == ["0"]
