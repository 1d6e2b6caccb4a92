"""SIGTERM as a request, honoured at safe points: between trials and between batches.

Raised where the signal landed, it could come half way through ``study.tell``, or before the trial
is labelled with its worker, leaving a RUNNING trial that nobody can explain. So the handler only
records it (``trainer.signals``), and the trial loop and a Lightning callback act on it.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from trainer.signals import SignalledStop

__all__ = ["StopOnRequest", "StopRequest", "WorkerStopped"]


class WorkerStopped(BaseException):
    """The worker was asked to stop: fail the current trial (never leave it RUNNING), then leave.

    A ``BaseException``, like ``KeyboardInterrupt``, so that an objective's ``except Exception``
    cannot swallow it and record an ordinary failure.
    """


class StopRequest(SignalledStop):
    """Set once by SIGTERM (``install()``); read by the trial loop and by ``StopOnRequest``."""

    raises = WorkerStopped


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
