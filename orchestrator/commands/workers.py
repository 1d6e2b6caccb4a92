"""``hpo logs``, ``hpo stop``, ``hpo gc``: a study's workers after the fact."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from pathlib import Path
from typing import Annotated

import docker
import typer
from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from orchestrator import engine
from orchestrator.all_at_once import each_at_once
from orchestrator.backends import STOP_TIMEOUT_S, find_local_workers, terminate
from orchestrator.commands._paths import RunsDir
from orchestrator.console import guard, stdout
from orchestrator.engine import translated
from orchestrator.errors import BackendError, ConfigError, HpoError
from orchestrator.settings import Instance, config_dir
from orchestrator.worker_logs import worker_log_paths, worker_of

FOLLOW_POLL_S = 0.5


def logs(
    study: Annotated[str, typer.Argument(help="Study name.")],
    worker: Annotated[
        int | None, typer.Option(min=0, help="Only this worker (default: all).")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing new lines, until the study's workers here have ended.",
        ),
    ] = False,
    runs_dir: RunsDir = Path("hpo-runs"),
) -> None:
    """Print a study's worker logs: from its containers while they exist, else from the files.

    A launch keeps each worker's output in <runs-dir>/<study>/worker-<k>.log (worker-<k>.2.log
    for a second launch's worker k running beside the first); the workers of a detached launch
    are read from the Docker engine, which holds their output until `hpo gc`.
    """
    containers = _containers_of(study, worker)
    if containers:
        _print_container_logs(containers, follow=follow)
        return
    if not worker_log_paths(runs_dir / study, worker):
        guard(_no_logs, runs_dir / study, f"worker-{'*' if worker is None else worker}.log")
    offsets: dict[Path, int] = {}
    instance = Instance.from_env().name
    while True:
        # Asked before reading: the lines a worker wrote as it ended are read once more.
        running = follow and bool(find_local_workers(study, instance))
        paths = worker_log_paths(runs_dir / study, worker)  # a restarted worker adds one
        for path in paths:
            prefix = f"{path.stem}| " if len(paths) > 1 else ""
            offsets[path] = _print_from(path, offsets.get(path, 0), prefix, whole=running)
        if not running:
            return
        time.sleep(FOLLOW_POLL_S)


def _print_from(path: Path, offset: int, prefix: str, *, whole: bool) -> int:
    """Print ``path``'s lines from byte ``offset`` on; the offset reached.

    With ``whole``, a last line still being written waits for its end (the next call).
    """
    with path.open("rb") as f:
        f.seek(offset)
        for line in f:
            if whole and not line.endswith(b"\n"):
                break
            text = prefix + line.decode(errors="replace").rstrip("\n")
            stdout.print(text, markup=False, highlight=False, soft_wrap=True)
            offset += len(line)
    return offset


def _containers_of(study: str, worker: int | None) -> list[Container]:
    """The study's worker containers, by worker id; none when no Docker engine answers."""
    try:
        client = engine.connect()
    except HpoError:
        return []  # the local backend needs no engine: its logs are files
    labels = {"hpo.study": study} | ({} if worker is None else {"hpo.worker": str(worker)})
    found = _worker_containers(client, labels)
    return sorted(found, key=lambda c: int(c.labels.get("hpo.worker", "0")))


def _print_container_logs(containers: list[Container], *, follow: bool) -> None:
    """Each container's output, prefixed with its worker when there are several."""

    def show(container: Container) -> None:
        prefix = f"worker-{container.labels.get('hpo.worker')}| " if len(containers) > 1 else ""
        with contextlib.suppress(DockerException):
            for line in container.logs(stream=True, follow=follow):
                text = prefix + line.decode(errors="replace").rstrip("\n")
                stdout.print(text, markup=False, highlight=False, soft_wrap=True)

    if not follow:
        for container in containers:
            show(container)
        return
    threads = [threading.Thread(target=show, args=(c,), daemon=True) for c in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def stop(study: Annotated[str, typer.Argument(help="Study name.")]) -> None:
    """Stop a study's workers here: containers (then removed) and local worker processes.

    SIGTERM: each worker fails its trial (the same command resumes it) and leaves; a local
    launch ends with its workers.
    """
    local, removed = guard(_stop_workers_of, study)
    if local:
        stdout.print(f"stopped {local} local worker process(es) of {study}")
    if removed:
        stdout.print(f"stopped and removed {removed} worker container(s) of {study}")
    if local or removed:
        return
    # Nothing to stop: its launch has ended, or the name is not the one meant.
    others = guard(_studies_with_workers)
    where = f"; studies with workers here: {', '.join(others)}" if others else " (nor of any study)"
    stdout.print(f"no workers of {study} here{where}", soft_wrap=True)


def _stop_workers_of(study: str) -> tuple[int, int]:
    """The study's local worker processes, then its containers: how many of each were stopped.

    Raises:
        BackendError: The Docker engine is unreachable and no local worker was found.
    """
    local = terminate(find_local_workers(study, Instance.from_env().name), STOP_TIMEOUT_S)
    try:
        return local, _remove_workers({"hpo.study": study}, running_too=True)
    except BackendError:
        if local:  # a local launch on a machine whose Docker engine is off: nothing more here
            return local, 0
        raise


def gc() -> None:
    """Remove ended worker containers left behind (a detached or killed launch), and secrets.

    The secrets are the storage-URL files of launches that no longer have a container.
    """
    removed = guard(_remove_workers, {}, running_too=False)
    guard(_remove_stale_secrets)
    stdout.print(f"removed {removed} ended worker container(s)")


def _remove_stale_secrets() -> None:
    """A launch's secrets folder (``<config>/secrets/<launch id>``) outlives a detached launch."""
    folders = [p for p in (config_dir() / "secrets").glob("*") if p.is_dir()]
    if not folders:
        return
    client = engine.connect()
    with translated("listing worker containers"):
        alive = {
            c.labels.get("hpo.launch")
            for c in client.containers.list(
                all=True, ignore_removed=True, filters={"label": "hpo.launch"}
            )
        }
    for folder in folders:
        if folder.name not in alive:
            shutil.rmtree(folder, ignore_errors=True)


def _remove_workers(labels: dict[str, str], *, running_too: bool) -> int:
    """Stop (when ``running_too``) and remove the matching worker containers, all at once."""
    client = engine.connect()
    found = _worker_containers(client, labels)
    chosen = [c for c in found if running_too or c.status != "running"]
    removed = sum(each_at_once(_stop_and_remove, chosen))
    client.close()
    return removed


def _studies_with_workers() -> list[str]:
    """The studies that have worker containers on this engine (of this hpo instance)."""
    client = engine.connect()
    found = _worker_containers(client, {})
    client.close()
    return sorted({c.labels["hpo.study"] for c in found if "hpo.study" in c.labels})


def _worker_containers(client: docker.DockerClient, labels: dict[str, str]) -> list[Container]:
    """This hpo instance's worker containers (any launch's) that carry ``labels``, ended too."""
    selector = {**Instance.from_env().labels, **labels}
    filters = [f"{key}={value}" for key, value in selector.items()] + ["hpo.launch"]
    with translated("listing worker containers"):
        return client.containers.list(all=True, ignore_removed=True, filters={"label": filters})


def _stop_and_remove(container: Container) -> int:
    """1 once ``container`` is stopped and removed, else 0.

    SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``: the time a worker gets on Ctrl-C too.
    """
    # NotFound: its launch, ending, removed it first.
    with translated(f"removing worker container {container.name}"), contextlib.suppress(NotFound):
        if container.status == "running":
            container.stop(timeout=STOP_TIMEOUT_S)
        container.remove(force=True)
        return 1
    return 0


def _no_logs(folder: Path, pattern: str) -> None:
    found = sorted({owner[0] for owner in map(worker_of, worker_log_paths(folder)) if owner})
    if found:
        workers = ", ".join(str(k) for k in found)
        raise ConfigError(f"no {pattern} in {folder}; its workers: {workers} (`--worker`).")
    raise ConfigError(f"no {pattern} in {folder}; pass `--runs-dir` as given to `hpo launch`.")
