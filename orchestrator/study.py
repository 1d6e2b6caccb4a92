"""Create or resume a self-describing study; read studies back for the CLI.

Only this module (with ``trainer.storage``) talks to Optuna's storage on the host, so database
errors are translated in one place.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from trainer import experiment, search_space
from trainer.spec import (
    SPEC_ATTR,
    STARTED_ATTR,
    Budget,
    ExperimentSpec,
    Objective,
    Resilience,
    Tracking,
    ready_attr,
)
from trainer.storage import CONNECTIONS_PER_WORKER, max_connections, open_storage, where

from orchestrator import __version__
from orchestrator.errors import ConfigError

__all__ = ["Resumed", "build_spec", "check_connections", "create_or_resume"]

# What may change on resume: the budget (that is how a study is extended), the version, tracking,
# and the failure limits (how many failures or how long an outage to tolerate, not what a trial
# computes).
RESUMABLE_CHANGES = (
    "budget",
    "hpo_version",
    "tracking",
    "resilience.max_failed",
    "resilience.max_retry",
    "resilience.db_outage_s",
)
LAUNCHER_CONNECTIONS = 4
RESERVED_CONNECTIONS = 3  # Postgres keeps these for superusers


def build_spec(
    name: str,
    overrides: Sequence[str],
    *,
    budget: Budget,
    sampler: str,
    pruner: str,
    seed: int | None,
    resilience: Resilience,
    config_dir: Path | None = None,
    tracking: Tracking | None = None,
) -> ExperimentSpec:
    """Compose the experiment, validate its search space, and check samples of it compose.

    ``config_dir`` is a user's config folder, searched after the packaged one.

    Raises:
        ConfigError: Bad experiment, override, search space or option; nothing was written yet.
    """
    cfg = experiment.compose(name, overrides, config_dir)
    if cfg.get("search_space") is None:
        raise ConfigError(f"experiment `{name}` has no `search_space`; set `search_space: <name>`.")
    raw_space = OmegaConf.to_container(cfg.search_space, resolve=True)
    space = search_space.parse(raw_space)
    _refuse_searched_overrides(overrides, space)
    _probe_every_branch(name, overrides, space, config_dir)
    return ExperimentSpec(
        experiment=name,
        overrides=tuple(overrides),
        config=OmegaConf.to_container(cfg, resolve=False),  # type: ignore[arg-type]
        search_space=raw_space,  # type: ignore[arg-type]
        objective=_objective(cfg),
        budget=budget,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        resilience=resilience,
        tracking=tracking or Tracking(),
        hpo_version=__version__,
    )


def _probe_every_branch(
    name: str, overrides: Sequence[str], space: search_space.SearchSpace, config_dir: Path | None
) -> None:
    """Compose a sample for each choice of a config-group or branching parameter.

    One random sample checks every always-sampled key; a choice that picks a config group or
    opens a sub-space changes what composes, so each is tried once (the rest sampled at random).

    Raises:
        ConfigError: A sample does not compose; the message says it came from the search space.
    """
    probes = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    branching = [
        {param.name: choice}
        for param in space.params
        if isinstance(param, search_space.CategoricalParam)
        and ("/" in param.key or param.conditional)
        for choice in param.choices
    ]
    for fixed in branching or [{}]:
        if fixed:
            probes.enqueue_trial(fixed)
        values = space.suggest(probes.ask())
        try:
            experiment.compose(name, [*overrides, *space.overrides(values)], config_dir)
        except ConfigError as e:
            reason = str(e).split(" Use `+", 1)[0]  # no `+key=` here: the space names its keys
            branch = "".join(f" ({key}: {choice})" for key, choice in fixed.items())
            raise ConfigError(f"search space{branch}: {reason}") from None


def _refuse_searched_overrides(overrides: Sequence[str], space: search_space.SearchSpace) -> None:
    """An override of a key the space samples would be overwritten by every trial: say so."""
    searched = space.searched_keys()
    for override, key in zip(overrides, experiment.override_keys(overrides), strict=True):
        if key in searched:
            field = searched[key]
            raise ConfigError(
                f"`{override}` would have no effect: every trial samples `{key}` "
                f"(`{field}`); to fix it at this value, also leave it out of the search: "
                f"`~{field}`."
            )


@dataclass(frozen=True)
class Resumed:
    """Where a created or resumed study stands before any worker starts."""

    deadline: float | None  # time.time() after which no trial starts (`--timeout`), if any
    idle: str | None = None  # why nothing would run: the budget is reached, or the deadline


def create_or_resume(
    url: str, study_name: str, spec: ExperimentSpec, *, force: bool, launch: str | None = None
) -> Resumed:
    """Create the study with ``spec`` in its user attrs, or resume it if its spec matches.

    ``launch`` names the launch whose workers wait for the study (``ready_attr``): it is
    recorded last, once the spec is in place, and only if there is something to run.

    Returns:
        Its deadline, and why nothing would run, if so: then the stored spec is left as it was.

    Raises:
        ConfigError: The study exists with another spec (the message lists what changed), or
            has more failed trials than ``--max-failed`` (its workers would stop at once).
        StorageError: The database cannot be reached.
    """
    storage = open_storage(url, study_name)
    try:
        resumed = _create_or_resume(storage, study_name, spec, force=force)
        if launch is not None and resumed.idle is None:
            study_id = storage.get_study_id_from_name(study_name)
            storage.set_study_system_attr(study_id, ready_attr(launch), time.time())
        return resumed
    finally:
        storage.engine.dispose()


def _create_or_resume(
    storage: RDBStorage, study_name: str, spec: ExperimentSpec, *, force: bool
) -> Resumed:
    try:
        study = optuna.create_study(
            storage=storage, study_name=study_name, directions=list(spec.objective.directions)
        )
        started = time.time()
        study.set_user_attr(STARTED_ATTR, started)
        study.set_user_attr(SPEC_ATTR, spec.to_json())
        study.set_metric_names(list(spec.objective.metrics))  # the dashboard's axis titles
        return Resumed(spec.budget.deadline(started))
    except DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=storage)
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        hint = "choose another `--study`"
        raise ConfigError(f"study `{study_name}` was not made by hpo (no `{SPEC_ATTR}`); {hint}.")
    changes = ExperimentSpec.from_json(stored).differences(spec, ignore=RESUMABLE_CHANGES)
    if changes and not force:
        hint = "pass `--force` to resume it anyway, or choose another `--study`"
        listed = "\n".join(changes)
        raise ConfigError(f"study `{study_name}` exists with another spec; {hint}:\n{listed}")
    started = float(study.user_attrs.get(STARTED_ATTR, time.time()))
    deadline = spec.budget.deadline(started)
    trials = study.get_trials(deepcopy=False)
    idle = _why_idle(trials, spec.budget, started)
    if idle is not None:
        return Resumed(deadline, idle)
    failed = sum(t.state is TrialState.FAIL for t in trials)
    limit = spec.resilience.max_failed
    if failed > limit:
        raise ConfigError(
            f"study `{study_name}` has {failed} failed trials, more than `--max-failed` {limit}: "
            f"its workers would stop at once. Raise `--max-failed` (`hpo status {study_name}` "
            "shows why they failed)."
        )
    study.set_user_attr(SPEC_ATTR, spec.to_json())
    return Resumed(deadline)


def _why_idle(trials: Sequence[FrozenTrial], budget: Budget, started: float) -> str | None:
    """Why a resumed study's workers would stop at once: its budget, or its `--timeout`."""
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    if done >= budget.trials:
        return (
            f"{done} trials finished, its budget of {budget.trials} is reached; "
            "nothing to run (a larger `--trials` adds more)."
        )
    deadline = budget.deadline(started)
    if deadline is not None and time.time() >= deadline:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        return (
            f"its `--timeout` of {budget.timeout_s:g} s, counted from its start ({since}), "
            "has passed; nothing to run (a larger `--timeout` runs more)."
        )
    return None


def check_connections(url: str, study_name: str, workers: int) -> None:
    """Refuse, before starting anything, a worker count the server cannot hold.

    Raises:
        ConfigError: ``max_connections`` is too small; the message gives both numbers.
    """
    limit = max_connections(url, study_name)
    needed = workers * CONNECTIONS_PER_WORKER + LAUNCHER_CONNECTIONS
    if needed > limit - RESERVED_CONNECTIONS:
        allowed = limit - RESERVED_CONNECTIONS
        raise ConfigError(
            f"{workers} workers need about {needed} database connections, but {where(url)} "
            f"allows {allowed}: lower `--workers` or raise the server's max_connections."
        )


def _objective(cfg: DictConfig) -> Objective:
    """``optimized_metric``/``direction``: one of each, or lists for a multi-objective study."""
    return Objective(_as_tuple(cfg.optimized_metric), _as_tuple(cfg.direction))


def _as_tuple(value: Any) -> tuple[Any, ...]:
    """A list from YAML, or one value, as a tuple (``Objective`` checks each item)."""
    return tuple(value) if isinstance(value, ListConfig | list) else (value,)
