"""The study-wide trial budget, reserved atomically in Postgres.

Optuna's ``MaxTrialsCallback`` checks after each trial, so N workers overshoot a budget by up to
N-1. Here a worker takes a Postgres advisory lock (one per study, held by a transaction), counts
the study's trials, and creates its next trial (or takes a WAITING one, as ``study.ask()`` does)
before the transaction ends: count-and-create is one step, so any number of workers stop at
exactly the budget. The lock covers no read of the study's trials, which grows with the study.

The same transaction claims the new trial: it writes the worker's labels (user attrs) and the
trial's first heartbeat, in one statement. Without a heartbeat row Optuna never counts a RUNNING
trial as stale; and four separate Optuna calls (two user attrs, an id lookup, a heartbeat) cost
more round trips than the trivial trial of ``bench/storage.py`` itself. Optuna makes the trial in
its own transaction, though: one made and never claimed is left to ``trainer.unclaimed``.

COMPLETE and PRUNED trials consume the budget; FAIL trials do not. While finished plus RUNNING
trials already fill the budget, a worker waits instead of leaving: a running trial may still fail,
and its retry (a WAITING trial, which ``ask()`` takes first) will need someone to run it.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import optuna
from sqlalchemy import Connection, Engine, text

from trainer.unclaimed import abandon

__all__ = ["BudgetGate", "Counts", "Reservation", "Verdict"]

# First key of the two-integer advisory lock; the second is the study id.
_LOCK_CLASS = 0x4850  # "HP"

# Labels and first heartbeat of a new trial, as Optuna's RDBStorage writes them (value_json is
# json.dumps of the value; the heartbeat is the server's clock, which staleness is judged by).
# Upserts: a retried trial inherits its failed original's user attrs.
_CLAIM = text(
    """
    WITH claimed AS (
        SELECT trial_id FROM trials WHERE study_id = :study_id AND number = :number
    ), labels AS (
        INSERT INTO trial_user_attributes (trial_id, key, value_json)
        SELECT claimed.trial_id, label.key, label.value::text
        FROM claimed, json_each(CAST(:labels AS json)) AS label
        ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json
        RETURNING trial_id
    ), beat AS (
        INSERT INTO trial_heartbeats (trial_id, heartbeat)
        SELECT trial_id, CURRENT_TIMESTAMP FROM claimed
        ON CONFLICT (trial_id) DO UPDATE SET heartbeat = EXCLUDED.heartbeat
        RETURNING trial_id
    )
    SELECT trial_id FROM claimed
    """
)


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


@dataclass(frozen=True)
class Reservation:
    """A trial created for this worker, labelled and with its first heartbeat recorded."""

    trial: optuna.Trial
    trial_id: int  # the storage's id, which heartbeats and direct reads need


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

    def reserve(
        self, study: optuna.Study, labels: Mapping[str, object] | None = None
    ) -> Reservation | Verdict:
        """Create and claim the next trial if the budget allows, else say why not.

        ``labels`` become the trial's user attrs (JSON-serialisable values). The lock is released
        when the transaction ends, also when ``ask()`` or the claim raises.
        """
        with self.engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:c, :s)"), self._key())
            counts = self._counts(connection)
            verdict = self._verdict(counts)
            if verdict is not None:
                return verdict
            trial = study.ask() if counts.waiting else _new_trial(study)
            claim = {
                "study_id": self.study_id,
                "number": trial.number,
                "labels": json.dumps(dict(labels or {})),
            }
            trial_id = connection.execute(_CLAIM, claim).scalar_one()
        return Reservation(trial=trial, trial_id=int(trial_id))

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


def _new_trial(study: optuna.Study) -> optuna.Trial:
    """``study.ask()`` less its search for a WAITING trial, when the count says there is none.

    That search reads every trial changed since the last read (the other workers' finished
    ones): inside the lock it made each worker wait for its peers' reads, which grow with the
    study (``bench/storage.py``: TPE with 2 workers cost 1.25x plain Optuna with it, 0.96x
    without). The sampler reads them anyway, outside the lock, when the trial's first parameter
    is suggested. Optuna is pinned below 6: these are its ask()'s steps.
    """
    study._thread_local.cached_all_trials = None  # as ask() does: samplers see a fresh study
    trial_id = study._storage.create_new_trial(study._study_id)
    try:
        return optuna.Trial(study, trial_id)  # the sampler's `before_trial` may raise
    except Exception as e:
        # Made, never to be claimed: it would hold a place in the budget for good.
        abandon(study._storage, trial_id, f"{type(e).__name__} as the trial was made: {e}")
        raise
