"""Ctrl-C and SIGTERM as a request to stop a launch, honoured between the launch's steps.

Python's default for Ctrl-C, and the handler this replaces for SIGTERM, raise
``KeyboardInterrupt`` wherever the main thread happens to be: half way through a psycopg commit
(which then fails with "can't change 'autocommit' now", and Optuna reports that instead of the
interrupt), or inside a lock that logging or the live view holds. The workers' cleanup runs after
that and must not meet a half-done state. So the handler only records the request; the launch
loop checks it where its state is consistent, and a second signal during the cleanup does not cut
the cleanup short (the workers get their SIGTERM, then SIGKILL after the stop timeout, either way).
The workers do the same on their side (``trainer.stopping``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["StopSignals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Set by SIGINT or SIGTERM while ``installed``; ``check`` and ``sleep`` act on it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Route both signals here (main thread only); the previous handlers come back after."""
        previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
        for signum in _SIGNALS:
            signal.signal(signum, self._on_signal)
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
        """Raise ``KeyboardInterrupt`` if a stop was asked for: the launch's one way out."""
        if self._event.is_set():
            raise KeyboardInterrupt

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` that a stop request ends at once (with ``KeyboardInterrupt``)."""
        if self._event.wait(seconds):
            raise KeyboardInterrupt

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._event.set()
