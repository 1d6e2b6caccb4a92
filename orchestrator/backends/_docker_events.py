"""The engine's container events for one launch, so a dead worker is seen when it dies.

Polling every container each second would see a death up to a second late and cost one API
call per worker per second; the engine pushes a ``die`` event the moment a container ends.
The launcher still polls (states, the live view), but sleeps on this watch instead of a clock.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Any

import docker
from docker.errors import DockerException
from requests.exceptions import RequestException

__all__ = ["DeathWatch"]

log = logging.getLogger(__name__)


class DeathWatch:
    """``die`` events of the containers labelled ``label`` (``key=value``), as they come.

    Args:
        client: The engine.
        label: The launch's label; only its containers are watched.
    """

    def __init__(self, client: docker.DockerClient, label: str) -> None:
        filters = {"type": "container", "event": "die", "label": label}
        self._stream: Any = client.events(decode=True, filters=filters)
        self._deaths: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._read, name="docker-events", daemon=True)
        self._thread.start()

    def wait(self, timeout_s: float) -> bool:
        """Block until a watched container died or ``timeout_s`` passed; True for a death.

        Every death that came meanwhile is taken at once: one wake-up, one poll of all workers.
        """
        try:
            self._deaths.get(timeout=timeout_s)
        except queue.Empty:
            return False
        with contextlib.suppress(queue.Empty):
            while True:
                self._deaths.get_nowait()
        return True

    def close(self) -> None:
        """End the stream (its thread ends with it)."""
        with contextlib.suppress(DockerException, RequestException, OSError):
            self._stream.close()
        self._thread.join(timeout=5)

    def _read(self) -> None:
        try:
            for event in self._stream:
                self._deaths.put(str(event.get("id", "")))
        except (DockerException, RequestException, OSError, ValueError) as e:
            # Closed by close(), or the engine went away: the launcher's polling carries on.
            log.debug("docker event stream ended: %s", e)
