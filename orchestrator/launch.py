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

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.live import Live
from trainer.spec import ExperimentSpec
from trainer.storage import open_storage, with_retries

from orchestrator.backends import Backend, WorkerHandle, WorkerSpec, WorkerState
from orchestrator.progress import Snapshot, render, take_snapshot

__all__ = ["LaunchPlan", "run"]

POLL_S = 1.0
Retry = Callable[[optuna.Study, FrozenTrial], None]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


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
    stop_timeout_s: float = 30.0


def run(plan: LaunchPlan, spec: ExperimentSpec, backend: Backend, console: Console) -> Snapshot:
    """Start the workers, show progress until they end, and return the final state.

    Database outages up to the grace period are ridden out. Ctrl-C stops every worker (SIGTERM,
    then kill after ``stop_timeout_s``) and re-raises.
    """
    # One retry policy for both ways a trial is failed here: stale heartbeat, or a dead worker.
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=spec.resilience.max_retry)
    storage = _reaping_storage(plan, spec, retry)
    study = optuna.load_study(study_name=plan.study, storage=storage)
    grace = spec.resilience.grace_s
    started = time.monotonic()
    done_before = sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))
    handles: dict[int, WorkerHandle] = {}
    states: dict[int, WorkerState] = {}
    reasons: dict[int, str] = {}  # worker -> why it failed

    def refresh() -> Snapshot:
        return with_retries(
            lambda: _reap_and_read(study, spec, states, started, done_before), grace
        )

    try:
        for worker in range(plan.workers):
            spec_k = WorkerSpec(
                plan.study,
                worker,
                plan.worker_storage_url,
                plan.runs_dir,
                plan.threads,
                plan.config_dir,
            )
            handles[worker] = backend.start(spec_k)
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while True:
                states.update({k: backend.poll(h) for k, h in handles.items()})
                for worker, state in states.items():
                    if state is WorkerState.FAILED and worker not in reasons:
                        reasons[worker] = backend.exit_reason(handles[worker])
                        fail = partial(
                            _fail_trials_of, study, storage, worker, reasons[worker], retry
                        )
                        with_retries(fail, grace)
                live.update(render(refresh()))
                if all(state.finished for state in states.values()):
                    break
                time.sleep(POLL_S)
        with_retries(lambda: _reap_orphans(study, spec), grace)
        return replace(refresh(), failure_reasons=dict(reasons))
    finally:
        for handle in handles.values():
            if not backend.poll(handle).finished:
                backend.stop(handle, plan.stop_timeout_s)
        backend.cleanup()
        storage.engine.dispose()


def _reap_and_read(
    study: optuna.Study,
    spec: ExperimentSpec,
    states: dict[int, WorkerState],
    started: float,
    done_before: int,
) -> Snapshot:
    """Fail stale trials (retrying them), then read the study for the view."""
    optuna.storages.fail_stale_trials(study)
    return take_snapshot(study, spec.budget.trials, states, started, done_before)


def _fail_trials_of(
    study: optuna.Study, storage: RDBStorage, worker: int, reason: str, retry: Retry
) -> None:
    """A worker died: fail its running trial now, with why, and retry it (no grace period wait).

    The heartbeat stays the safety net for when no launcher watches (another host, a crash).
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("worker") != worker:
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


def _reap_orphans(study: optuna.Study, spec: ExperimentSpec) -> None:
    """No worker is left: wait out the grace period of any RUNNING trial, then fail it."""
    deadline = time.monotonic() + spec.resilience.grace_s + spec.resilience.heartbeat_s
    while (
        study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        and time.monotonic() < deadline
    ):
        time.sleep(POLL_S)
        optuna.storages.fail_stale_trials(study)
