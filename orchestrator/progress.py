"""The live view of a launch, polled from the database (callbacks run inside the workers)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from trainer.budget import Counts
from trainer.spec import is_launch_worker

from orchestrator.backends import WorkerState
from orchestrator.reading import fail_reason

__all__ = ["Show", "Snapshot", "live_view", "render", "take_snapshot"]


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
    last_failure: tuple[int, str] | None = None  # the latest FAIL trial: (number, why)

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
    *,
    launch: str | None = None,
) -> Snapshot:
    """Read the study once and summarise it.

    The counts cover every launch's trials; ``running`` holds only those of ``launch``'s own
    ``workers`` (another machine's worker 0 is not this launch's).
    """
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
        worker: (t.number, _last_step(t))
        for t in trials
        if t.state is TrialState.RUNNING
        for worker in workers
        if is_launch_worker(t, launch, worker)
    }
    single = len(study.directions) == 1
    failed = [t for t in trials if t.state is TrialState.FAIL]
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
        last_failure=(failed[-1].number, fail_reason(failed[-1])) if failed else None,
    )


Show = Callable[["Snapshot"], None]


@contextmanager
def live_view(console: Console) -> Iterator[Show]:
    """Show a launch's snapshots: a live table on a terminal, one line per change in a log.

    Rich's ``Live`` draws only its last frame when the output is not a terminal (``docker compose
    logs``, a pipe, CI), so a long study would show nothing until it ended. There, a line is
    printed when a trial finishes or a worker ends, and the last frame (the table) at the end.
    """
    if console.is_terminal and not console.is_dumb_terminal:
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            yield lambda snapshot: live.update(render(snapshot))
        return
    lines = _ChangeLines(console)
    try:
        yield lines.show
    finally:
        if lines.last is not None:
            console.print(render(lines.last))


class _ChangeLines:
    """Progress for a log: the counts when they change, and each worker that ends or restarts."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.last: Snapshot | None = None

    def show(self, snapshot: Snapshot) -> None:
        previous, self.last = self.last, snapshot
        if previous is None or self._key(snapshot) != self._key(previous):
            best = snapshot.best
            best_text = f"  best {best.value:.4f} (trial {best.number})" if best else ""
            cells = "  ".join(_head_cells(snapshot))
            self._print(f"{cells}  {_state_cells(snapshot.counts)}{best_text}")
        for worker, state in sorted(snapshot.workers.items()):
            before = previous.workers.get(worker) if previous else None
            restarted = snapshot.restarts.get(worker, 0) > (
                previous.restarts.get(worker, 0) if previous else 0
            )
            if (state.finished and state is not before) or restarted:
                note = _worker_note(snapshot, worker, markup=False)
                self._print(f"{snapshot.study}  w{worker} {state}" + (f": {note}" if note else ""))

    @staticmethod
    def _key(snapshot: Snapshot) -> tuple[int, int, int | None]:
        best = snapshot.best
        return (snapshot.counts.finished, snapshot.counts.failed, best.number if best else None)

    def _print(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)


def render(snapshot: Snapshot) -> Group:
    """Rich renderable: progress line, states, best so far, workers."""
    counts = snapshot.counts
    head = Table.grid(padding=(0, 2))
    study, *rest = _head_cells(snapshot)
    head.add_row(f"[bold]{escape(study)}[/]", *rest)
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


def _head_cells(snapshot: Snapshot) -> list[str]:
    """Study, trials done of the budget, pace, elapsed and time left (plain text)."""
    eta = snapshot.remaining_s
    return [
        snapshot.study,
        f"{snapshot.counts.finished}/{snapshot.budget} trials",
        f"{snapshot.per_minute:.1f}/min",
        f"elapsed {_clock(snapshot.elapsed_s)}",
        f"left ~{_clock(eta)}" if eta is not None else "left ?",
    ]


def _state_cells(counts: Counts) -> str:
    return (
        f"complete {counts.complete}  pruned {counts.pruned}  failed {counts.failed}  "
        f"running {counts.running}"
    )


def _workers_table(snapshot: Snapshot) -> Table:
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="dim")
    for column in ("worker", "state", "trial", "epoch", "note"):
        table.add_column(column)
    for worker, state in sorted(snapshot.workers.items()):
        trial, step = snapshot.running.get(worker, (None, None))
        shown = ["-" if value is None else str(value) for value in (trial, step)]
        table.add_row(f"w{worker}", str(state), *shown, _worker_note(snapshot, worker))
    return table


def _worker_note(snapshot: Snapshot, worker: int, *, markup: bool = True) -> str:
    """Why a worker failed (red while it stays down), and how often it was restarted."""
    reason = snapshot.failure_reasons.get(worker)
    restarts = snapshot.restarts.get(worker, 0)
    if snapshot.workers.get(worker) is WorkerState.FAILED:
        text = reason or "failed"
        return f"[red]{escape(text)}[/]" if markup else text
    if restarts:
        text = f"restarted {restarts}x (last: {reason})"
        return escape(text) if markup else text
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
