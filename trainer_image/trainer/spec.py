"""The experiment spec: everything a worker needs, stored as JSON in the study's user attrs.

A worker is given only a storage URL and a study name; the study describes itself. So a worker on
another host, in another container or process, runs exactly the experiment the launcher meant.
Resuming a study with a different spec is refused with the list of what changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from trainer.errors import ConfigError

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

__all__ = [
    "SPEC_ATTR",
    "STARTED_ATTR",
    "Budget",
    "ExperimentSpec",
    "Objective",
    "Resilience",
    "Tracking",
    "is_launch_worker",
    "ready_attr",
]

SPEC_ATTR = "hpo.spec"
STARTED_ATTR = "hpo.started_at"  # time.time() at creation: the origin of `--timeout`
Direction = Literal["minimize", "maximize"]
SAMPLERS = ("tpe", "random", "cmaes", "qmc")
PRUNERS = ("median", "hyperband", "none")
TRACKERS = ("wandb", "none")
WANDB_NAME_FORBIDDEN = "/\\#?%:"  # W&B refuses these in a project name (wandb.Settings)
WANDB_NAME_MAX = 128


def ready_attr(launch: str) -> str:
    """The study's system attr that says the study is ready for ``launch``'s workers.

    A launcher starts its workers before it creates or resumes the study, so that their imports
    (seconds) overlap that; they wait for this attr before they read the spec, which the launch
    may be replacing. One attr per launch: launches of one study from many hosts, each with
    its own workers, never wait on each other's.
    """
    return f"hpo.ready.{launch}"


def is_launch_worker(trial: FrozenTrial, launch: str | None, worker: int) -> bool:
    """Whether ``trial`` is run by ``worker`` of ``launch``, by the labels its worker gave it.

    Every launch numbers its workers from 0, so the worker alone does not say: launches of one
    study on several machines each have a worker 0. A trial without a launch label (a worker
    started by hand, or an older one) goes by its worker alone.
    """
    labels = trial.user_attrs
    return labels.get("worker") == worker and labels.get("launch", launch) == launch


@dataclass(frozen=True)
class Objective:
    """What a trial returns: one metric per direction (two or more make a multi-objective study)."""

    metrics: tuple[str, ...]
    directions: tuple[Direction, ...]

    def __post_init__(self) -> None:
        if not self.metrics or len(self.metrics) != len(self.directions):
            raise ConfigError("`objective`: give one direction per metric.")
        for direction in self.directions:
            if direction not in ("minimize", "maximize"):
                raise ConfigError(f"`direction` must be minimize or maximize, got {direction!r}.")


@dataclass(frozen=True)
class Budget:
    """When the study is done: ``trials`` COMPLETE+PRUNED trials, or ``timeout_s`` after start."""

    trials: int
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"`--trials` must be >= 1, got {self.trials}.")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"`--timeout` must be > 0 seconds, got {self.timeout_s}.")

    def deadline(self, started: float) -> float | None:
        """The ``time.time()`` after which no trial starts, for a study begun at ``started``."""
        return None if self.timeout_s is None else started + self.timeout_s


@dataclass(frozen=True)
class Resilience:
    """How failures are survived: heartbeats, retries, and when to give up.

    ``grace_s`` says when a trial is dead (no heartbeat for that long); ``db_outage_s`` how long
    workers and launchers wait for an unreachable database. They differ on purpose: an outage
    longer than the grace period is ridden out, and a trial whose heartbeat lapsed meanwhile is
    failed and retried once the database is back (or goes on, if its heartbeat came first).
    """

    heartbeat_s: int = 10
    grace_s: int = 30
    max_retry: int = 1
    max_failed: int = 10
    db_outage_s: int = 300

    def __post_init__(self) -> None:
        if self.heartbeat_s < 1:
            raise ConfigError(f"`--heartbeat` must be >= 1 second, got {self.heartbeat_s}.")
        if self.grace_s < 2 * self.heartbeat_s:
            raise ConfigError(
                f"`--grace` must be >= 2 x `--heartbeat` ({2 * self.heartbeat_s} s), "
                f"got {self.grace_s}."
            )
        if self.max_retry < 0:
            raise ConfigError(f"`--max-retry` must be >= 0, got {self.max_retry}.")
        if self.max_failed < 0:
            raise ConfigError(f"`--max-failed` must be >= 0, got {self.max_failed}.")
        if self.db_outage_s < 1:
            raise ConfigError(f"`--db-outage` must be >= 1 second, got {self.db_outage_s}.")


@dataclass(frozen=True)
class Tracking:
    """Where each trial's curves go: one W&B run per trial (offline without a key), or nowhere."""

    backend: str = "wandb"
    project: str = "hpo"
    entity: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in TRACKERS:
            choices = ", ".join(TRACKERS)
            raise ConfigError(f"`--tracking` must be one of: {choices}; got {self.backend!r}.")
        if not self.project.strip():
            raise ConfigError("`--wandb-project` must not be empty.")

    @property
    def enabled(self) -> bool:
        """Whether trials log to W&B."""
        return self.backend == "wandb"


def check_wandb_names(tracking: Tracking) -> None:
    """W&B's own rule for project names, checked at launch so that no trial meets it first.

    Not part of ``Tracking`` itself: a study stored before this check must still load.

    Raises:
        ConfigError: The project or entity has a character W&B refuses, or is too long.
    """
    for flag, name in (("--wandb-project", tracking.project), ("--wandb-entity", tracking.entity)):
        if name is not None and (
            set(name) & set(WANDB_NAME_FORBIDDEN) or len(name) > WANDB_NAME_MAX
        ):
            raise ConfigError(
                f"`{flag}` {name!r} is not a W&B name: at most {WANDB_NAME_MAX} characters, "
                f"none of `{WANDB_NAME_FORBIDDEN}`."
            )


@dataclass(frozen=True)
class ExperimentSpec:
    """A study's self-description. ``overrides`` plus the sampled params compose each trial."""

    experiment: str
    overrides: tuple[str, ...]
    config: Mapping[str, Any]  # composed, interpolations kept: what the trials start from
    search_space: Mapping[str, Any]
    objective: Objective
    budget: Budget
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None
    resilience: Resilience = field(default_factory=Resilience)
    tracking: Tracking = field(default_factory=Tracking)
    hpo_version: str = "0.0.0"

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(
                f"`--sampler` must be one of: {', '.join(SAMPLERS)}; got {self.sampler!r}."
            )
        if self.pruner not in PRUNERS:
            raise ConfigError(
                f"`--pruner` must be one of: {', '.join(PRUNERS)}; got {self.pruner!r}."
            )

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), so equal specs give equal text."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExperimentSpec:
        """Read a spec written by ``to_json``.

        Raises:
            ConfigError: The text is not a spec of this version's shape.
        """
        try:
            raw = json.loads(text)
            return cls(
                experiment=raw["experiment"],
                overrides=tuple(raw["overrides"]),
                config=raw["config"],
                search_space=raw["search_space"],
                objective=Objective(
                    tuple(raw["objective"]["metrics"]), tuple(raw["objective"]["directions"])
                ),
                budget=Budget(**raw["budget"]),
                sampler=raw["sampler"],
                pruner=raw["pruner"],
                seed=raw["seed"],
                resilience=Resilience(**raw["resilience"]),
                tracking=Tracking(**raw.get("tracking", {})),  # absent in studies before 0.2
                hpo_version=raw["hpo_version"],
            )
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ConfigError(
                f"the study's `{SPEC_ATTR}` is not a spec this hpo can read: {e!r}."
            ) from e

    def differences(self, other: ExperimentSpec, ignore: Sequence[str] = ()) -> list[str]:
        """``key: old -> new`` for each flattened field that differs, ``ignore`` prefixes aside."""
        mine, theirs = _flatten(json.loads(self.to_json())), _flatten(json.loads(other.to_json()))
        changed = []
        for key in sorted(mine.keys() | theirs.keys()):
            if any(key.startswith(prefix) for prefix in ignore):
                continue
            if mine.get(key) != theirs.get(key):
                changed.append(f"{key}: {mine.get(key)!r} -> {theirs.get(key)!r}")
        return changed


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat |= _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return flat
    return {prefix: value}
