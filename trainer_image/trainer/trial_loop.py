"""One trial's life inside a worker: attrs, heartbeat, run, tell, retry."""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage

# ``Study.tell`` reads the finished trial back to return a copy no worker uses: six of the ~35
# statements a trial costs (bench/storage.py). ``Study.optimize`` calls these functions instead
# (the check first, to record why values are refused); pyproject pins optuna below 6 for them,
# and the unit tests exercise every call.
from optuna.study._tell import _check_values_are_feasible, _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

from trainer.budget import BudgetGate, Reservation, Verdict
from trainer.errors import ConfigError
from trainer.heartbeat import Heartbeat
from trainer.spec import Resilience
from trainer.stopping import StopRequest, WorkerStopped
from trainer.storage import with_retries
from trainer.unclaimed import UnclaimedTrials

__all__ = ["TrialLoop"]

log = logging.getLogger("trainer.worker")
T = TypeVar("T")
WAIT_POLL_S = 0.5  # while peers' running trials fill the budget: the count is one query
_REASON_CHARS = 500
_HOST = socket.gethostname()  # the container's id under Docker


@dataclass(frozen=True)
class TrialLoop:
    """What a worker needs to run trials of its study."""

    study: optuna.Study
    storage: RDBStorage
    study_id: int
    objective: Callable[[optuna.Trial], Sequence[float]]
    resilience: Resilience
    worker_id: int
    retry: Callable[[optuna.Study, FrozenTrial], None]
    stop: StopRequest
    launch: str | None = None  # labels each trial, with the worker, for its launcher
    machine: str = _HOST  # labels each trial: launches number their workers from 0 on each machine
    log_name: str | None = None  # labels each trial: two launches here both have a worker 0

    @property
    def outage_s(self) -> float:
        """How long database outages are ridden out."""
        return self.resilience.db_outage_s

    def pull(self, gate: BudgetGate) -> Verdict:
        """Reserve the next trial and run it, until the gate says stop.

        Stale and unclaimed trials are reaped at most once per heartbeat interval: often enough
        for a dead peer's trial to be retried within the grace period, without a query per trial.

        Raises:
            WorkerStopped: A stop was requested; no trial of this worker is left RUNNING.
        """
        last_reap = -math.inf
        unclaimed = UnclaimedTrials(self.storage, self.study_id, self.resilience.grace_s)
        labels: dict[str, int | str] = {
            "worker": self.worker_id,
            "host": _HOST,
            "machine": self.machine,
        }
        if self.launch is not None:
            labels["launch"] = self.launch
        if self.log_name is not None:
            labels["log"] = self.log_name
        while True:
            self.stop.check()
            if time.monotonic() - last_reap >= self.resilience.heartbeat_s:
                self._between_trials(lambda: optuna.storages.fail_stale_trials(self.study))
                self._between_trials(unclaimed.reap)
                last_reap = time.monotonic()
            reserved = self._between_trials(lambda: gate.reserve(self.study, labels))
            if reserved is Verdict.WAIT:
                self.stop.sleep(WAIT_POLL_S)
                continue
            if isinstance(reserved, Verdict):
                return reserved
            self.run_one(reserved)

    def _between_trials(self, action: Callable[[], T]) -> T:
        """``action``, riding out an outage; a stop ends the wait at once (no trial is ours)."""
        return with_retries(action, self.outage_s, sleep=self.stop.sleep)

    def run_one(self, reservation: Reservation) -> None:
        """Run a reserved trial under a heartbeat and record its end; retry a failure if allowed."""
        trial, trial_id = reservation.trial, reservation.trial_id
        started = time.monotonic()
        try:
            self.stop.check()  # it came while the trial was reserved
            with Heartbeat(self.storage, trial_id, self.resilience.heartbeat_s):
                values = self.objective(trial)
        except optuna.TrialPruned:
            self._tell(trial, trial_id, started, state=TrialState.PRUNED)
            return
        except UpdateFinishedTrialError:  # a report or attr write, after a peer failed the trial
            self._already_finished(trial)  # that peer retried it: not a failure of this worker
            return
        except WorkerStopped:
            self._fail(trial, trial_id, started, "worker stopped (SIGTERM)")
            raise
        except ConfigError as e:  # the same params would be refused again: no retry
            log.error("trial %d: %s", trial.number, e)
            self._fail(trial, trial_id, started, f"{type(e).__name__}: {e}")
            return
        except Exception as e:
            log.exception("trial %d failed", trial.number)
            if self._fail(trial, trial_id, started, f"{type(e).__name__}: {e}"):
                self.retry(self.study, self.storage.get_trial(trial_id))
            return
        reason = _check_values_are_feasible(self.study, values)
        if reason is not None:  # NaN (a diverged fit): FAIL with why; the same params would again
            self._fail(trial, trial_id, started, reason)
            return
        self._tell(trial, trial_id, started, values=values)

    def _fail(self, trial: optuna.Trial, trial_id: int, started: float, reason: str) -> bool:
        """Mark FAIL with its reason (its first ``_REASON_CHARS``); False if already finished."""
        reason = reason[:_REASON_CHARS]
        try:
            with_retries(lambda: trial.set_user_attr("fail_reason", reason), self.outage_s)
        except UpdateFinishedTrialError:
            return self._already_finished(trial)
        return self._tell(trial, trial_id, started, state=TrialState.FAIL)

    def _tell(
        self,
        trial: optuna.Trial,
        trial_id: int,
        started: float,
        values: Sequence[float] | None = None,
        state: TrialState | None = None,
    ) -> bool:
        """``study.tell``, then the trial's line in the worker log; False if already finished.

        A trial the reaper already failed is logged, not fatal. Its state is read only when the
        tell is refused, not before every tell.
        """
        try:
            told, recorded, _ = with_retries(
                lambda: _tell_with_warning(self.study, trial, values, state), self.outage_s
            )
        except (ValueError, UpdateFinishedTrialError):
            if self.storage.get_trial(trial_id).state.is_finished():
                return self._already_finished(trial)
            raise
        _log_end(trial, told, time.monotonic() - started, recorded)
        return True

    def _already_finished(self, trial: optuna.Trial) -> bool:
        log.warning(
            "trial %d was already finished elsewhere (failed after a missed heartbeat?); "
            "its result is dropped",
            trial.number,
        )
        return False


def _log_end(
    trial: optuna.Trial, state: TrialState, seconds: float, values: Sequence[float] | None
) -> None:
    """One line per finished trial in the worker's log, which is what ``hpo logs`` shows.

    Optuna writes such a line from ``optimize`` only; workers tell through ``_tell_with_warning``.
    """
    shown = f", values {[round(v, 6) for v in values]}" if values else ""
    log.info(
        "trial %d %s in %.1f s%s; parameters %s",
        trial.number,
        state.name,
        seconds,
        shown,
        trial.params,
    )
