"""Read studies back: summaries for ``hpo studies``, one study for ``status`` and ``best``.

Each function opens the storage, reads, and closes it again: the CLI holds no connection.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from trainer import search_space
from trainer.retries import retry_of
from trainer.spec import SPEC_ATTR, ExperimentSpec
from trainer.storage import open_storage, where

from orchestrator.errors import ConfigError
from orchestrator.worker_logs import worker_of

__all__ = [
    "HEARTBEAT_LOST",
    "Loaded",
    "StudyRow",
    "WorkerNames",
    "best_trials",
    "delete",
    "fail_reason",
    "load",
    "opened",
    "retrain_command",
    "rows",
    "running_note",
    "scores",
    "spec_of",
    "trial_note",
]

# Why a FAIL trial with no recorded reason failed: a peer or launcher found its heartbeat stale.
HEARTBEAT_LOST = "heartbeat lost (worker died, or the database was unreachable?)"


def scores(metrics: Sequence[str], values: Sequence[float]) -> str:
    """``val_acc 0.9722, val_loss 0.1031``: a trial's values, each named by its metric."""
    return ", ".join(f"{m} {v:.4g}" for m, v in zip(metrics, values, strict=True))


def fail_reason(trial: FrozenTrial) -> str:
    """Why a FAIL trial failed, as its worker or launcher recorded it.

    A trial without a reason was failed by a peer for a stale heartbeat: its worker died unseen,
    or could not reach the database for longer than the grace period.
    """
    return str(trial.user_attrs.get("fail_reason", HEARTBEAT_LOST))


def trial_note(trial: FrozenTrial) -> str:
    """What a trial's state alone does not say: why it failed, when it was pruned, what it retries.

    ``retry of trial 3; worker w1 died: OOM-killed``, ``pruned after 1 epoch``, or empty.
    """
    notes = []
    before = retry_of(trial.system_attrs)
    if before is not None:
        notes.append(f"retry of trial {before}")
    if trial.state is TrialState.FAIL:
        notes.append(fail_reason(trial))
    elif trial.state is TrialState.PRUNED and trial.last_step is not None:
        epochs = trial.last_step + 1  # steps count epochs from 0
        notes.append(f"pruned after {epochs} epoch{'s' if epochs > 1 else ''}")
    return "; ".join(notes)


def running_note(trial: FrozenTrial, worker: str) -> str:
    """Who runs a RUNNING trial and its last epoch (numbered as the live view numbers them).

    ``worker`` empty: no worker labelled it, so none has claimed it (``trainer.unclaimed``).
    """
    where = f"on {worker}" if worker else "not claimed by a worker"
    epoch = trial.last_step
    return f"{where}, {'no epoch reported yet' if epoch is None else f'epoch {epoch}'}"


class WorkerNames:
    """Names the worker of each trial: ``w0``, or ``w0@gpu-2`` for a study run on several machines.

    Every launch numbers its workers from 0, so with several machines "w0" alone does not say
    whose worker it was, nor where its log and run folder are. A second launch running beside
    the first on one machine writes its worker 0's output to ``worker-0.2.log``: that worker is
    ``w0 (worker-0.2.log)``.
    """

    def __init__(self, trials: Iterable[FrozenTrial]) -> None:
        machines = {trial.user_attrs.get("machine") for trial in trials} - {None}
        self.several_machines = len(machines) > 1

    def __call__(self, trial: FrozenTrial) -> str:
        """The worker's name; empty for a trial no worker labelled (one added by hand)."""
        labels = trial.user_attrs
        if "worker" not in labels:
            return ""
        worker, machine, log = labels["worker"], labels.get("machine"), labels.get("log")
        name = f"w{worker}@{machine}" if self.several_machines and machine else f"w{worker}"
        copy = worker_of(Path(log)) if log else None
        return f"{name} ({log})" if copy is not None and copy[1] > 1 else name


@dataclass(frozen=True)
class StudyRow:
    """One line of ``hpo studies``."""

    name: str
    finished: int
    budget: int | None
    best: float | None  # single-objective studies
    front: int | None  # multi-objective studies: trials on the Pareto front
    directions: tuple[str, ...]


@dataclass(frozen=True)
class Loaded:
    """A study read in full: its spec, trials and best trial(s)."""

    spec: ExperimentSpec
    trials: list[FrozenTrial]
    best: list[FrozenTrial]  # one, or the Pareto front; empty before any completed trial


@contextmanager
def opened(url: str, name: str) -> Iterator[optuna.Study]:
    """Study ``name``, its storage closed again when the block ends.

    Raises:
        ConfigError: No such study there.
    """
    storage = open_storage(url, name)
    try:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise ConfigError(
                f"no study `{name}` at {where(url)}; `hpo studies` lists them."
            ) from None
        yield study
    finally:
        storage.engine.dispose()


def load(url: str, name: str) -> Loaded:
    """Read a study in full.

    Raises:
        ConfigError: No such study there, or one not made by hpo.
    """
    with opened(url, name) as study:
        return Loaded(spec_of(study), study.get_trials(), best_trials(study))


def rows(url: str) -> list[StudyRow]:
    """Every study at ``url`` with its progress and best value."""
    storage = open_storage(url, "cli")
    try:
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
        return [_row(storage, summary) for summary in summaries]
    finally:
        storage.engine.dispose()


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial, or the Pareto front of a multi-objective study; empty before any result."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    return list(study.best_trials) if len(study.directions) > 1 else [study.best_trial]


def spec_of(study: optuna.Study) -> ExperimentSpec:
    """The study's spec.

    Raises:
        ConfigError: The study was not made by hpo.
    """
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        raise ConfigError(f"study `{study.study_name}` was not made by hpo (no `{SPEC_ATTR}`).")
    return ExperimentSpec.from_json(stored)


def retrain_command(spec: ExperimentSpec, params: dict[str, Any]) -> str:
    """The one command that trains a trial's configuration again."""
    space = search_space.parse(spec.search_space)
    overrides = [*spec.overrides, *space.overrides(params)]
    arguments = ["python", "-m", "trainer.train", f"experiment={spec.experiment}", *overrides]
    return shlex.join(arguments)


def delete(url: str, name: str) -> None:
    """Delete a study and every trial of it.

    Raises:
        ConfigError: No such study.
    """
    storage = open_storage(url, name)
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        raise ConfigError(f"no study `{name}` at {where(url)}; `hpo studies` lists them.") from None
    finally:
        storage.engine.dispose()


def _row(storage: optuna.storages.RDBStorage, summary: optuna.study.StudySummary) -> StudyRow:
    study_id = storage.get_study_id_from_name(summary.study_name)
    finished = sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        for t in storage.get_all_trials(study_id, deepcopy=False)
    )
    stored = summary.user_attrs.get(SPEC_ATTR)
    budget = ExperimentSpec.from_json(stored).budget.trials if stored else None
    directions = tuple(d.name.lower() for d in summary.directions)
    if len(directions) > 1:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        front = len(best_trials(study)) or None
        return StudyRow(summary.study_name, finished, budget, None, front, directions)
    best = summary.best_trial.value if summary.best_trial else None
    return StudyRow(summary.study_name, finished, budget, best, None, directions)
