"""The study's own W&B run: every trial in one table, the search's history, what mattered.

Trial runs show curves; this run (job_type ``study``, in the same group) shows the search as a
whole: a table of all trials (number, state, params, value, duration, worker, a note on why
it failed or was pruned), the best value over trials, parameter importances, and the best
params in its summary. The launcher logs it when a study ends; ``hpo wandb STUDY`` logs it
again at any time (same run id: it is replaced).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from trainer.spec import ExperimentSpec
from trainer.wandb_runs import (
    init_run,
    online_finish_timeout_s,
    run_id,
    wandb_dir,
    wants_online,
)

from orchestrator.errors import BackendError
from orchestrator.reading import opened, spec_of, trial_note

__all__ = ["LoggedRun", "log_study_run", "log_study_run_at", "trial_columns", "trial_rows"]

log = logging.getLogger("orchestrator")


def trial_columns(metrics: tuple[str, ...]) -> list[str]:
    """The trials table's columns: ``value``, or a column per metric of a multi-objective study."""
    values = ["value"] if len(metrics) == 1 else list(metrics)
    return [
        "number",
        "state",
        "params",
        *values,
        "duration_s",
        "worker",
        "machine",
        "run_id",
        "note",
    ]


def trial_rows(trials: list[FrozenTrial], objectives: int = 1) -> list[list[Any]]:
    """One row per trial, in ``trial_columns`` order: ``objectives`` values each (or None)."""
    rows = []
    for trial in sorted(trials, key=lambda t: t.number):
        duration = trial.duration.total_seconds() if trial.duration else None
        values = list(trial.values) if trial.values else [None] * objectives
        rows.append(
            [
                trial.number,
                trial.state.name,
                json.dumps(trial.params, sort_keys=True),
                *values,
                duration,
                trial.user_attrs.get("worker"),
                trial.user_attrs.get("machine"),
                trial.user_attrs.get("wandb_run_id"),
                trial_note(trial),
            ]
        )
    return rows


@dataclass(frozen=True)
class LoggedRun:
    """A logged study run: its id, and whether it reached W&B (else it was written offline)."""

    id: str
    online: bool


def log_study_run_at(url: str, name: str, runs_dir: Path) -> LoggedRun:
    """Load study ``name`` from ``url`` and log its study run; see ``log_study_run``.

    Raises:
        ConfigError: No such study, or one not made by hpo.
        BackendError: W&B refused the run's data, or did not take it in time.
    """
    with opened(url, name) as study:
        return log_study_run(study, spec_of(study), runs_dir)


def log_study_run(study: optuna.Study, spec: ExperimentSpec, runs_dir: Path) -> LoggedRun:
    """Log the study run: online with a key (if W&B answers), else offline in the run folder.

    Raises:
        BackendError: W&B refused the run's data, or did not take it within
            ``online_finish_timeout_s``.
    """
    import wandb  # the host needs it only here

    trials = study.get_trials(deepcopy=False)
    tracking = spec.tracking
    folder = wandb_dir(runs_dir, study.study_name)
    folder.mkdir(parents=True, exist_ok=True)
    settings = dict(
        project=tracking.project,
        entity=tracking.entity,
        group=study.study_name,
        name=f"{study.study_name}-study",
        id=run_id(study.study_name, "study"),
        job_type="study",
        tags=[spec.experiment, spec.sampler],
        config={
            "experiment": spec.experiment,
            "overrides": list(spec.overrides),
            "search_space": dict(spec.search_space),
            "sampler": spec.sampler,
            "pruner": spec.pruner,
            "budget": spec.budget.trials,
            "seed": spec.seed,
        },
        dir=str(folder),
    )
    run, online = init_run(settings, wants_online())
    try:
        run.log(_charts(study, trials, spec.objective.metrics))
        run.summary.update(_summary(study, trials))
        run.finish()
    except TimeoutError:  # online only: W&B would otherwise wait as long as it takes
        raise BackendError(
            f"W&B did not take the study run's data within {online_finish_timeout_s():g} s "
            f"(rate-limited or failing?); it is kept in {run.dir}."
        ) from None
    except wandb.errors.Error as e:  # e.g. the server refused the key while tables uploaded
        with contextlib.suppress(Exception):
            run.finish(exit_code=1)
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise BackendError(f"W&B refused the study run: {reason}") from None
    return LoggedRun(str(run.id), online)


def _charts(
    study: optuna.Study, trials: list[FrozenTrial], metrics: tuple[str, ...]
) -> dict[str, Any]:
    """The table of trials, and the best-so-far and importance charts where they apply."""
    import wandb

    columns: list[str | int] = [*trial_columns(metrics)]
    table = wandb.Table(columns=columns, data=trial_rows(trials, len(metrics)))
    charts: dict[str, Any] = {"trials": table}
    history = _best_so_far(study, trials)
    if history:
        best = wandb.Table(columns=["number", "best_value"], data=history)
        charts["history"] = wandb.plot.line(
            best, "number", "best_value", title=f"best {metrics[0]}"
        )
    importances = _importances(study)
    if importances:
        ranked = wandb.Table(columns=["param", "importance"], data=importances)
        charts["importance"] = wandb.plot.bar(
            ranked, "param", "importance", title=f"importance for {metrics[0]}"
        )
    return charts


def _best_so_far(study: optuna.Study, trials: list[FrozenTrial]) -> list[list[float]]:
    if len(study.directions) != 1:
        return []
    pick = max if study.direction is optuna.study.StudyDirection.MAXIMIZE else min
    best = math.nan
    rows = []
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state is TrialState.COMPLETE and trial.value is not None:
            best = trial.value if math.isnan(best) else pick(best, trial.value)
            rows.append([trial.number, best])
    return rows


def _importances(study: optuna.Study) -> list[list[Any]]:
    """FANOVA importances of the first objective; none while fewer than two trials completed."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or len(study.directions) != 1:
        return []
    try:
        with warnings.catch_warnings():  # "few trials in a regime": expected early in a search
            warnings.simplefilter("ignore", UserWarning)
            ranked = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as e:  # e.g. every param constant
        log.info("no parameter importances: %s", e)
        return []
    return [[name, float(value)] for name, value in ranked.items()]


def _summary(study: optuna.Study, trials: list[FrozenTrial]) -> dict[str, Any]:
    states = {state.name: sum(t.state is state for t in trials) for state in TrialState}
    summary: dict[str, Any] = {
        "n_trials": len(trials),
        **{f"n_{k.lower()}": v for k, v in states.items()},
    }
    if len(study.directions) == 1 and states["COMPLETE"]:
        summary |= {
            "best_value": study.best_value,
            "best_params": study.best_params,
            "best_trial": study.best_trial.number,
        }
    elif states["COMPLETE"]:
        summary["pareto_front"] = sorted(trial.number for trial in study.best_trials)
    return summary
