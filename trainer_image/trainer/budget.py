"""The study-wide trial budget, reserved atomically in Postgres.

Optuna's ``MaxTrialsCallback`` checks after each trial, so N workers overshoot a budget by up to
N-1. Here a worker takes a Postgres advisory lock (one per study), counts the study's trials,
and creates its next trial with ``study.ask()`` before releasing the lock: count-and-create is one
step, so any number of workers stop at exactly the budget.

COMPLETE and PRUNED trials consume the budget; FAIL trials do not. While finished plus RUNNING
trials already fill the budget, a worker waits instead of leaving: a running trial may still fail,
and its retry (a WAITING trial, which ``ask()`` takes first) will need someone to run it.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import optuna
from sqlalchemy import Connection, Engine, text

__all__ = ["BudgetGate", "Counts", "Verdict"]

# First key of the two-integer advisory lock; the second is the study id.
_LOCK_CLASS = 0x4850  # "HP"


class Verdict(enum.Enum):
    """What a worker should do when no trial was reserved."""

    WAIT = "wait"
    DONE = "done"
    TIMED_OUT = "timed out"
    TOO_MANY_FAILURES = "too many failures"


@dataclass(frozen=True)
class Counts:
    """Trials of one study by state."""

    complete: int = 0
    pruned: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0

    @property
    def finished(self) -> int:
        """Trials that consume the budget."""
        return self.complete + self.pruned


class BudgetGate:
    """Hands out the trials of one study, never more than ``budget`` finished ones.

    Args:
        engine: The storage's SQLAlchemy engine (Optuna's ``RDBStorage.engine``).
        study_id: Optuna's id of the study (the lock key and the counting filter).
        budget: COMPLETE + PRUNED trials to reach.
        max_failed: Stop once more trials than this have failed.
        deadline: ``time.time()`` after which no trial starts.
    """

    def __init__(
        self, engine: Engine, study_id: int, budget: int, max_failed: int, deadline: float | None
    ) -> None:
        self.engine = engine
        self.study_id = study_id
        self.budget = budget
        self.max_failed = max_failed
        self.deadline = deadline

    def reserve(self, study: optuna.Study) -> optuna.Trial | Verdict:
        """Create the next trial if the budget allows, else say why not."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:c, :s)"), self._key())
            try:
                counts = self._counts(connection)
                verdict = self._verdict(counts)
                return study.ask() if verdict is None else verdict
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:c, :s)"), self._key())
                connection.commit()

    def _counts(self, connection: Connection) -> Counts:
        """The study's trials by state, in one statement, on the connection holding the lock."""
        query = text("SELECT state, count(*) FROM trials WHERE study_id = :s GROUP BY state")
        rows = connection.execute(query, {"s": self.study_id}).all()
        by_state = {str(state).rsplit(".", 1)[-1].lower(): int(n) for state, n in rows}
        return Counts(
            complete=by_state.get("complete", 0),
            pruned=by_state.get("pruned", 0),
            running=by_state.get("running", 0),
            waiting=by_state.get("waiting", 0),
            failed=by_state.get("fail", 0),
        )

    def _verdict(self, counts: Counts) -> Verdict | None:
        if counts.finished >= self.budget:
            return Verdict.DONE
        if counts.failed > self.max_failed:
            return Verdict.TOO_MANY_FAILURES
        if self.deadline is not None and time.time() >= self.deadline:
            return Verdict.TIMED_OUT
        if counts.finished + counts.running >= self.budget:
            return Verdict.WAIT
        return None

    def _key(self) -> dict[str, int]:
        return {"c": _LOCK_CLASS, "s": self.study_id}
