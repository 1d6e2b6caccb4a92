"""The managed Postgres: one container per instance, its data in a named volume.

``up`` is idempotent (it starts what is missing and waits for readiness); ``down`` removes the
container but keeps the volume unless asked, so no study is lost by default. The port is
published on 127.0.0.1 only; workers reach the server by its container name on the instance's
private network.
"""

from __future__ import annotations

import contextlib
import io
import socket
import tarfile
import time
from dataclasses import dataclass

import docker
from docker.errors import NotFound
from docker.models.containers import Container

from orchestrator.credentials import load_or_create_password, redact_url
from orchestrator.engine import translated
from orchestrator.errors import BackendError
from orchestrator.settings import Instance, config_dir

__all__ = ["DbStatus", "ManagedPostgres"]

# The driver is named, not left to SQLAlchemy's default for `postgresql://` (which changed).
SCHEME = "postgresql+psycopg"
USER = "hpo"
DATABASE = "hpo"
CONTAINER_PORT = 5432
PREFERRED_PORT = 5432  # on the host; another free one is taken when it is busy
DATA_DIR = "/var/lib/postgresql/data"
PASSWORD_FILE = "/etc/hpo-postgres-password"
# Postgres' default of 100 holds ~30 workers (3 connections each); this holds ~60.
MAX_CONNECTIONS = 200
_SECOND_NS = 1_000_000_000
_LOG_TAIL = 20


@dataclass(frozen=True)
class DbStatus:
    """What ``hpo db status`` shows."""

    container: str
    state: str  # "absent", or Docker's: "running", "exited", ...
    health: str | None
    port: int | None
    image: str | None
    volume: str
    volume_exists: bool


class ManagedPostgres:
    """The Postgres container, volume, network and password of one ``Instance``."""

    def __init__(self, client: docker.DockerClient, instance: Instance) -> None:
        self.client = client
        self.instance = instance
        self.password_path = config_dir() / f"{instance.name}-postgres-password"

    def up(self, image: str, *, port: int | None = None, timeout_s: float = 120.0) -> DbStatus:
        """Create or start the container and wait until it accepts connections.

        Args:
            image: Postgres image honouring the official image's environment contract.
            port: Host port on 127.0.0.1; default 5432, or a free one when 5432 is taken.
            timeout_s: How long to wait for readiness.

        Raises:
            BackendError: The engine refused, or Postgres did not become ready in time.
        """
        container = self._container()
        if container is None:
            container = self._create(image, port or _free_port(PREFERRED_PORT))
        if container.status != "running":
            with translated(f"starting {container.name}"):
                container.start()
        self._wait_healthy(container, timeout_s)
        return self.status()

    def down(self, *, delete_data: bool = False) -> None:
        """Stop and remove the container; with ``delete_data`` the volume and password too."""
        container = self._container()
        if container is not None:
            with translated(f"removing {container.name}"):
                container.remove(force=True)
        self._remove_network_if_unused()
        if delete_data:
            volume = self.instance.postgres_volume
            with translated(f"removing volume {volume}"), contextlib.suppress(NotFound):
                self.client.volumes.get(volume).remove()
            self.password_path.unlink(missing_ok=True)

    def status(self) -> DbStatus:
        """The container's state, health and port, and whether the data volume exists."""
        container = self._container()
        volume_exists = self._volume_exists()
        name = self.instance.postgres_container
        if container is None:
            return DbStatus(
                name, "absent", None, None, None, self.instance.postgres_volume, volume_exists
            )
        health = container.attrs["State"].get("Health", {}).get("Status")
        image = (container.image.tags or [container.image.short_id])[0] if container.image else None
        return DbStatus(
            name,
            container.status,
            health,
            _published_port(container),
            image,
            self.instance.postgres_volume,
            volume_exists,
        )

    def url(self, *, from_network: bool = False, reveal: bool = False) -> str:
        """The storage URL: for the host (127.0.0.1:<port>) or for containers on the network.

        Raises:
            BackendError: The container does not exist (run ``hpo db up`` first).
        """
        container = self._container()
        if container is None:
            raise BackendError(
                f"no managed database `{self.instance.postgres_container}`: run `hpo db up`."
            )
        if from_network:
            host, port = self.instance.postgres_container, CONTAINER_PORT
        else:
            host, port = "127.0.0.1", _published_port(container) or CONTAINER_PORT
        password = load_or_create_password(self.password_path)
        url = f"{SCHEME}://{USER}:{password}@{host}:{port}/{DATABASE}"
        return url if reveal else redact_url(url)

    def _create(self, image: str, port: int) -> Container:
        network = self._ensure_network()
        password = load_or_create_password(self.password_path)
        labels = {**self.instance.labels, "hpo.role": "postgres"}
        with translated(f"creating {self.instance.postgres_container}"):
            container = self.client.containers.create(
                image,
                command=["postgres", "-c", f"max_connections={MAX_CONNECTIONS}"],
                name=self.instance.postgres_container,
                hostname=self.instance.postgres_container,
                environment={
                    "POSTGRES_USER": USER,
                    "POSTGRES_DB": DATABASE,
                    "POSTGRES_PASSWORD_FILE": PASSWORD_FILE,
                },
                volumes={self.instance.postgres_volume: {"bind": DATA_DIR, "mode": "rw"}},
                ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
                network=network,
                labels=labels,
                healthcheck={
                    "test": [
                        "CMD-SHELL",
                        f"pg_isready -h 127.0.0.1 -p 5432 -U {USER} -d {DATABASE}",
                    ],
                    "interval": _SECOND_NS,
                    "timeout": 3 * _SECOND_NS,
                    "retries": 120,
                },
            )
            # In a file copied into the container, not an environment variable: `docker inspect`
            # shows environment variables to anyone who can reach the engine.
            container.put_archive(
                "/etc", _single_file_tar(PASSWORD_FILE.rsplit("/", 1)[1], password)
            )
        return container

    def _wait_healthy(self, container: Container, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            container.reload()
            if container.status == "exited":
                raise BackendError(f"{container.name} exited during start:\n{_tail(container)}")
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                return
            time.sleep(0.5)
        raise BackendError(
            f"{container.name} was not ready within {timeout_s:.0f} s:\n{_tail(container)}"
        )

    def _container(self) -> Container | None:
        with translated("looking up the database container"):
            try:
                return self.client.containers.get(self.instance.postgres_container)
            except NotFound:
                return None

    def _volume_exists(self) -> bool:
        try:
            self.client.volumes.get(self.instance.postgres_volume)
        except NotFound:
            return False
        return True

    def _ensure_network(self) -> str:
        name = self.instance.network
        with translated(f"creating network {name}"):
            if not self.client.networks.list(names=[name]):
                self.client.networks.create(name, driver="bridge", labels=self.instance.labels)
        return name

    def _remove_network_if_unused(self) -> None:
        with translated(f"removing network {self.instance.network}"):
            for network in self.client.networks.list(names=[self.instance.network]):
                network.reload()
                if not network.attrs.get("Containers"):
                    network.remove()


def _free_port(preferred: int) -> int:
    """``preferred`` if nothing listens on 127.0.0.1 there, else a port the kernel picks."""
    for candidate in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise BackendError("no free TCP port on 127.0.0.1 for Postgres")


def _published_port(container: Container) -> int | None:
    bindings = container.attrs["HostConfig"].get("PortBindings") or {}
    for binding in bindings.get(f"{CONTAINER_PORT}/tcp") or []:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def _single_file_tar(name: str, content: str) -> bytes:
    data = content.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o444
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _tail(container: Container) -> str:
    return container.logs(tail=_LOG_TAIL).decode(errors="replace").rstrip()
