"""The live view of a launch, polled from the database (callbacks run inside the workers)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from trainer.budget import Counts

from orchestrator.backends import WorkerState

__all__ = ["Snapshot", "live_view", "render", "take_snapshot"]


@contextmanager
def live_view(console: Console) -> Iterator[Live]:
    """Rich's ``Live`` display, whose last frame also ends its line when output is not a terminal.

    Rich ends the line only on a terminal; in a log or a pipe, what is printed next (the summary,
    the detached message, "stopping the workers") would continue the table's last line.
    """
    try:
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            yield live
    finally:
        if not console.is_terminal:
            console.line()


@dataclass(frozen=True)
class Snapshot:
    """A study and its workers at one moment."""

    study: str
    budget: int
    counts: Counts
    best: FrozenTrial | None
    pareto_size: int
    running: Mapping[int, tuple[int, int | None]]  # worker -> (trial number, last epoch reported)
    workers: Mapping[int, WorkerState] = field(default_factory=dict)  # worker id -> state
    elapsed_s: float = 0.0
    finished_since_start: int = 0
    failure_reasons: Mapping[int, str] = field(default_factory=dict)  # worker -> why it failed
    restarts: Mapping[int, int] = field(default_factory=dict)  # worker -> times restarted

    @property
    def per_minute(self) -> float:
        """Finished trials per minute in this launch."""
        return 60.0 * self.finished_since_start / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def remaining_s(self) -> float | None:
        """Estimated seconds to the budget at this launch's pace."""
        left = self.budget - self.counts.finished
        if left <= 0:
            return 0.0
        return 60.0 * left / self.per_minute if self.per_minute > 0 else None


def take_snapshot(
    study: optuna.Study,
    budget: int,
    workers: Mapping[int, WorkerState],
    started: float,
    finished_at_start: int,
) -> Snapshot:
    """Read the study once and summarise it."""
    trials = study.get_trials(deepcopy=False)
    by_state = {state: 0 for state in TrialState}
    for trial in trials:
        by_state[trial.state] += 1
    counts = Counts(
        complete=by_state[TrialState.COMPLETE],
        pruned=by_state[TrialState.PRUNED],
        running=by_state[TrialState.RUNNING],
        waiting=by_state[TrialState.WAITING],
        failed=by_state[TrialState.FAIL],
    )
    running = {
        int(t.user_attrs.get("worker", -1)): (t.number, _last_step(t))
        for t in trials
        if t.state is TrialState.RUNNING
    }
    single = len(study.directions) == 1
    return Snapshot(
        study=study.study_name,
        budget=budget,
        counts=counts,
        best=_best(study, trials) if single else None,
        pareto_size=0 if single else len(study.best_trials),
        running=running,
        workers=dict(workers),
        elapsed_s=time.monotonic() - started,
        finished_since_start=counts.finished - finished_at_start,
    )


def render(snapshot: Snapshot) -> Group:
    """Rich renderable: progress line, states, best so far, workers."""
    counts = snapshot.counts
    eta = snapshot.remaining_s
    head = Table.grid(padding=(0, 2))
    head.add_row(
        f"[bold]{snapshot.study}[/]",
        f"{counts.finished}/{snapshot.budget} trials",
        f"{snapshot.per_minute:.1f}/min",
        f"elapsed {_clock(snapshot.elapsed_s)}",
        f"left ~{_clock(eta)}" if eta is not None else "left ?",
    )
    states = Table.grid(padding=(0, 2))
    states.add_row(
        f"complete {counts.complete}",
        f"pruned {counts.pruned}",
        f"running {counts.running}",
        f"waiting {counts.waiting}",
        f"[red]failed {counts.failed}[/]" if counts.failed else "failed 0",
    )
    parts: list[Table | str] = [head, states]
    if snapshot.best is not None:
        best = snapshot.best
        parts.append(f"best {best.value:.4f} (trial {best.number}): {_params(best.params)}")
    elif snapshot.pareto_size:
        parts.append(f"Pareto front: {snapshot.pareto_size} trials")
    parts.append(_workers_table(snapshot))
    return Group(*parts)


def _workers_table(snapshot: Snapshot) -> Table:
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="dim")
    for column in ("worker", "state", "trial", "epoch", "note"):
        table.add_column(column)
    for worker, state in sorted(snapshot.workers.items()):
        trial, step = snapshot.running.get(worker, (None, None))
        shown = ["-" if value is None else str(value) for value in (trial, step)]
        table.add_row(f"w{worker}", str(state), *shown, _worker_note(snapshot, worker))
    return table


def _worker_note(snapshot: Snapshot, worker: int) -> str:
    """Why a worker failed (red while it stays down), and how often it was restarted."""
    reason = snapshot.failure_reasons.get(worker)
    restarts = snapshot.restarts.get(worker, 0)
    if snapshot.workers.get(worker) is WorkerState.FAILED:
        return f"[red]{reason or 'failed'}[/]"
    if restarts:
        return f"restarted {restarts}x (last: {reason})"
    return ""


def _best(study: optuna.Study, trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    pick = max if study.direction is optuna.study.StudyDirection.MAXIMIZE else min
    return pick(complete, key=lambda t: t.value if t.value is not None else math.nan)


def _last_step(trial: FrozenTrial) -> int | None:
    return max(trial.intermediate_values) if trial.intermediate_values else None


def _params(params: Mapping[str, object]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"
