"""A signal as a request to stop, honoured at safe points, not wherever the signal lands.

Raising from a signal handler would land anywhere: inside SQLAlchemy's pool, half way through a
psycopg commit (which then fails with "can't change 'autocommit' now", and Optuna reports that
instead of the interrupt), or inside a lock that logging or a live view holds. The handler here
only records the request; the code that owns the state checks it where that state is consistent
(Lightning does the same with its own ``received_sigterm`` flag). A second signal changes
nothing, so it cannot cut a cleanup short.

Torch-free: the workers (``trainer.stopping``) and the launcher (``orchestrator.launch``) share it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import ClassVar

__all__ = ["SignalledStop"]


class SignalledStop:
    """Set by a signal once its handler is ours; ``check`` and ``sleep`` raise ``raises``."""

    raises: ClassVar[type[BaseException]] = KeyboardInterrupt

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self, signums: Iterable[int] = (signal.SIGTERM,)) -> None:
        """Make ``signums`` set this request, for good (call from the main thread)."""
        for signum in signums:
            signal.signal(signum, self._on_signal)

    @contextmanager
    def installed(
        self, signums: Iterable[int] = (signal.SIGINT, signal.SIGTERM)
    ) -> Iterator[SignalledStop]:
        """Make ``signums`` set this request; their previous handlers come back after."""
        previous = {signum: signal.getsignal(signum) for signum in signums}
        self.install(previous)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def set(self) -> None:
        """Ask for a stop, as a signal would."""
        self._event.set()

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise ``raises`` if a stop was asked for."""
        if self._event.is_set():
            raise self.raises

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` that a stop request ends at once (with ``raises``)."""
        if self._event.wait(seconds):
            raise self.raises

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._event.set()
