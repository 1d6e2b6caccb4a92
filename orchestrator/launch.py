"""Run a study to its budget with N workers: start, watch, reap, stop, summarise.

Written once for every backend. While workers run, the launcher itself fails stale trials:
Optuna reaps them only when some worker starts its next trial, so the trial of the last worker to
die would otherwise stay RUNNING for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from trainer.retries import RetryAsNewAttempt
from trainer.signals import SignalledStop
from trainer.spec import ExperimentSpec, is_launch_worker
from trainer.storage import open_storage, raise_if_deleted, with_retries
from trainer.unclaimed import UnclaimedTrials

from orchestrator.all_at_once import each_at_once
from orchestrator.backends import STOP_TIMEOUT_S, Backend, WorkerHandle, WorkerSpec, WorkerState
from orchestrator.progress import Snapshot, live_view, take_snapshot

__all__ = ["LaunchPlan", "run"]

POLL_S = 1.0
Retry = Callable[[optuna.Study, FrozenTrial], None]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
T = TypeVar("T")


@dataclass(frozen=True)
class LaunchPlan:
    """How one launch runs its workers."""

    study: str
    storage_url: str = field(repr=False)  # for the launcher, on this host
    worker_storage_url: str = field(repr=False)  # for workers (containers reach Postgres by name)
    workers: int
    runs_dir: Path
    threads: int | None = None
    config_dir: Path | None = None
    restart_workers: int = 0  # restarts allowed per failed worker
    detach: bool = False  # return once every worker runs; leave them running
    stop_timeout_s: float = STOP_TIMEOUT_S
    # Labels the workers' trials; first starts wait until the study is ready for it (see `run`).
    launch_id: str | None = None
    machine: str | None = None  # where the workers run (``Backend.machine``): labels the trials


def run(
    plan: LaunchPlan,
    spec: ExperimentSpec,
    backend: Backend,
    console: Console,
    stop: SignalledStop | None = None,
    *,
    ready: Callable[[], bool] = lambda: True,
) -> Snapshot | None:
    """Start the workers, make the study ready, show progress until they end; the final state.

    The workers start first and wait until the study is ready for ``plan.launch_id``, so that
    their imports (seconds) overlap ``ready`` creating or resuming it. When ``ready`` returns False
    (nothing to run) or raises, the workers are stopped and removed; False returns ``None``.
    Database outages up to ``--db-outage`` are ridden out. A request on ``stop`` (Ctrl-C,
    SIGTERM) stops every worker (SIGTERM, then kill after ``stop_timeout_s``) and raises
    ``KeyboardInterrupt``; so does a worker that cannot be started, with its error.
    With ``plan.detach`` the workers are left running once they all run.
    """
    stop = stop or SignalledStop()
    started = time.monotonic()
    fleet = _Fleet(plan, backend)
    try:
        stop.check()
        # Side by side: a start is a few engine calls (~0.2 s); N of them in turn add up.
        each_at_once(fleet.start, range(plan.workers))
        stop.check()
        if not ready():
            return None
        return _watch(plan, spec, fleet, console, stop=stop, started=started)
    except KeyboardInterrupt:
        console.print(f"stopping the workers (killed after {plan.stop_timeout_s:.0f} s) ...")
        raise
    finally:
        if not (plan.detach and fleet.all_running):
            fleet.stop_all()


def _watch(
    plan: LaunchPlan,
    spec: ExperimentSpec,
    fleet: _Fleet,
    console: Console,
    *,
    stop: SignalledStop,
    started: float,
) -> Snapshot:
    """Show progress until every worker has ended (or, detached, runs); fail dead ones' trials."""
    # One retry policy for both ways a trial is failed here: stale heartbeat, or a dead worker.
    retry = RetryAsNewAttempt(max_retry=spec.resilience.max_retry)
    storage = _reaping_storage(plan, spec, retry)
    try:
        study = optuna.load_study(study_name=plan.study, storage=storage)
        done_before = sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))
        fleet.fail_trials = partial(
            _fail_trials_of, study, storage, launch=plan.launch_id, retry=retry
        )
        study_id = storage.get_study_id_from_name(plan.study)
        unclaimed = UnclaimedTrials(storage, study_id, spec.resilience.grace_s)

        def retried(action: Callable[[], T]) -> T:
            return with_retries(action, spec.resilience.db_outage_s, sleep=stop.sleep)

        def refresh() -> Snapshot:
            def read() -> Snapshot:
                unclaimed.reap()
                states, launch = fleet.states, plan.launch_id
                return _reap_and_read(study, spec, states, started, done_before, launch=launch)

            return fleet.annotate(retried(read))

        with live_view(console) as show:
            while not stop.is_set():
                retried(fleet.poll)
                show(refresh())
                if fleet.all_finished:
                    break
                if plan.detach and fleet.all_running:
                    return refresh()
                fleet.backend.wait(POLL_S)  # a worker's death ends the wait at once
        stop.check()
        retried(lambda: _reap_orphans(study, spec, stop.sleep, launch=plan.launch_id))
        return refresh()
    except KeyError:  # Optuna's word for a row that is gone: the study's, or a real fault
        raise_if_deleted(storage, plan.study)
        raise
    finally:
        storage.engine.dispose()


class _Fleet:
    """The launch's workers: their handles and states, why they failed, how often restarted."""

    def __init__(
        self,
        plan: LaunchPlan,
        backend: Backend,
        fail_trials: Callable[[int, str], None] = lambda worker, reason: None,
    ) -> None:
        self.plan = plan
        self.backend = backend
        # (worker, reason): fail its RUNNING trial at once; set once the study is loaded.
        self.fail_trials = fail_trials
        self.handles: dict[int, WorkerHandle] = {}
        # In worker order from the start (the view and summary list them so), though they
        # start side by side.
        self.states = {worker: WorkerState.PENDING for worker in range(plan.workers)}
        self.reasons: dict[int, str] = {}  # worker -> why it last failed
        self.restarts: dict[int, int] = {}
        self._handled: set[str] = set()  # handles whose failure was dealt with

    @property
    def all_finished(self) -> bool:
        """Whether every worker has ended (and will not be restarted)."""
        return bool(self.states) and all(state.finished for state in self.states.values())

    @property
    def all_running(self) -> bool:
        """Whether every worker is up."""
        states = self.states.values()
        return bool(states) and all(state is WorkerState.RUNNING for state in states)

    def start(self, worker: int) -> None:
        """Start (or restart) ``worker``."""
        plan = self.plan
        spec = WorkerSpec(
            plan.study,
            worker,
            plan.worker_storage_url,
            plan.runs_dir,
            plan.threads,
            plan.config_dir,
            launch=plan.launch_id,
            # A restart comes after the study was ready: no wait, whichever launch it names now.
            wait_ready=plan.launch_id is not None and worker not in self.handles,
            machine=plan.machine,
        )
        self.handles[worker] = self.backend.start(spec)
        self.states[worker] = WorkerState.PENDING

    def poll(self) -> None:
        """Refresh the states; a newly failed worker's trial is failed, and it may restart."""
        for worker, handle in list(self.handles.items()):
            self.states[worker] = state = self.backend.poll(handle)
            if state is not WorkerState.FAILED or handle.id in self._handled:
                continue
            reason = self.backend.exit_reason(handle)
            self.fail_trials(worker, reason)  # may raise while the database is down: polled again
            self._handled.add(handle.id)
            self.reasons[worker] = reason
            if self.restarts.get(worker, 0) < self.plan.restart_workers:
                self.restarts[worker] = self.restarts.get(worker, 0) + 1
                self.start(worker)

    def annotate(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with the workers' failures and restarts."""
        return replace(snapshot, failure_reasons=dict(self.reasons), restarts=dict(self.restarts))

    def stop_all(self) -> None:
        """Stop every worker still running, all at once, then remove what the backend made.

        One worker's error neither spares the others nor skips the removal; it is raised after.
        """
        try:
            each_at_once(self._stop_one, self.handles.values())
        finally:
            self.backend.cleanup()

    def _stop_one(self, handle: WorkerHandle) -> None:
        """Stop ``handle`` unless it has ended."""
        if not self.backend.poll(handle).finished:
            self.backend.stop(handle, self.plan.stop_timeout_s)


def _reap_and_read(
    study: optuna.Study,
    spec: ExperimentSpec,
    states: dict[int, WorkerState],
    started: float,
    done_before: int,
    *,
    launch: str | None,
) -> Snapshot:
    """Fail stale trials (retrying them), then read the study for the view."""
    optuna.storages.fail_stale_trials(study)
    return take_snapshot(study, spec.budget.trials, states, started, done_before, launch=launch)


def _fail_trials_of(
    study: optuna.Study,
    storage: RDBStorage,
    worker: int,
    reason: str,
    *,
    launch: str | None,
    retry: Retry,
) -> None:
    """A worker died: fail its running trial now, with why, and retry it (no grace period wait).

    Another launch of the study (on another machine, say) has a worker of the same number: its
    trials carry their own ``launch`` label and are left alone. The heartbeat stays the safety
    net for when no launcher watches (another host, a crash).
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_launch_worker(trial, launch, worker):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            storage.set_trial_user_attr(trial_id, "fail_reason", f"worker w{worker} died: {reason}")
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # it ended meanwhile
        retry(study, storage.get_trial(trial_id))


def failed_workers(snapshot: Snapshot) -> list[int]:
    """Workers that exited with an error."""
    return [k for k, state in snapshot.workers.items() if state is WorkerState.FAILED]


def _reaping_storage(plan: LaunchPlan, spec: ExperimentSpec, retry: Retry) -> RDBStorage:
    """A storage that knows the heartbeat settings (and ``retry``), so the launcher can reap."""
    resilience = spec.resilience
    return open_storage(
        plan.storage_url,
        plan.study,
        heartbeat_s=resilience.heartbeat_s,
        grace_s=resilience.grace_s,
        stale_callback=retry,
    )


def _reap_orphans(
    study: optuna.Study,
    spec: ExperimentSpec,
    sleep: Callable[[float], None],
    *,
    launch: str | None,
) -> None:
    """No worker of this launch is left: fail what is stale, and wait out any trial still ours.

    Trials of other launches (other machines, or a second launch here) are left to their own
    workers, launchers and heartbeats: this launch ends at once rather than wait the grace period
    for a trial that is alive elsewhere.
    """
    optuna.storages.fail_stale_trials(study)
    deadline = time.monotonic() + spec.resilience.grace_s + spec.resilience.heartbeat_s
    while _running_trials_of(study, launch) and time.monotonic() < deadline:
        sleep(POLL_S)
        optuna.storages.fail_stale_trials(study)


def _running_trials_of(study: optuna.Study, launch: str | None) -> list[FrozenTrial]:
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [trial for trial in running if trial.user_attrs.get("launch") == launch]
