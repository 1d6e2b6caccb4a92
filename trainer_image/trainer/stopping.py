"""SIGTERM as a request, honoured at safe points: between trials and between batches.

Raising from the signal handler itself would land anywhere: inside SQLAlchemy's pool, half way
through ``study.tell``, or before the trial is labelled with its worker, leaving a RUNNING trial
that nobody can explain. The handler only records the request; the trial loop and a Lightning
callback act on it where the state is consistent (Lightning does the same with its own
``received_sigterm`` flag).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from lightning.pytorch.callbacks import Callback

__all__ = ["StopOnRequest", "StopRequest", "WorkerStopped"]


class WorkerStopped(BaseException):
    """The worker was asked to stop: fail the current trial (never leave it RUNNING), then leave.

    A ``BaseException``, like ``KeyboardInterrupt``, so that an objective's ``except Exception``
    cannot swallow it and record an ordinary failure.
    """


class StopRequest:
    """Set once by SIGTERM; read by the trial loop and by ``StopOnRequest``."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> None:
        """Make SIGTERM set this request (call from the main thread)."""
        signal.signal(signal.SIGTERM, self._on_signal)

    def set(self) -> None:
        """Ask the worker to stop."""
        self._event.set()

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise ``WorkerStopped`` if a stop was asked for."""
        if self._event.is_set():
            raise WorkerStopped

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._event.set()


class StopOnRequest(Callback):
    """Ends a fit at the next batch boundary once a stop is requested.

    Lightning installs its own SIGTERM handler during a fit and chains ours, so both flags are set;
    this callback also covers a signal that came before the fit began, which Lightning forgets.
    """

    def __init__(self, request: StopRequest) -> None:
        self.request = request

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        """Stop after this training step."""
        self.request.check()

    def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
        """Stop after this validation step."""
        self.request.check()
