"""One trial: sampled params -> config overrides -> Lightning fit -> the objective's values."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import optuna
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from trainer import fit, search_space
from trainer.errors import ConfigError
from trainer.pruning import ResilientPruning
from trainer.search_space import SearchSpace
from trainer.spec import ExperimentSpec
from trainer.stopping import StopOnRequest, StopRequest, WorkerStopped
from trainer.storage import with_retries
from trainer.tracking import EpochBest, EpochLearningRate, Tracker
from trainer.trial_config import TrialConfigs

__all__ = ["TrialRunner"]


@dataclass(frozen=True)
class TrialRunner:
    """Runs trials of one study in this worker.

    Args:
        spec: The study's spec.
        study_name: Names the trial folders.
        runs_dir: Root of ``<study>/trial-<n>/`` folders (curves, logs, tracker files).
        threads: torch threads for this worker's share of the cores; ``None`` keeps the config's.
        stop: Ends a fit at the next batch once set (by SIGTERM).
        config_dir: A user's Hydra config folder (their experiments and models), if any.
        tracker: Starts each trial's W&B run; ``None`` when tracking is off.
    """

    spec: ExperimentSpec
    study_name: str
    runs_dir: Path
    threads: int | None = None
    stop: StopRequest = field(default_factory=StopRequest)
    config_dir: Path | None = None
    tracker: Tracker | None = None

    @cached_property
    def configs(self) -> TrialConfigs:
        """The trials' configs, each composition by Hydra kept for the trials that share it."""
        return TrialConfigs(self.spec.experiment, self.spec.overrides, self.config_dir)

    @property
    def space(self) -> SearchSpace:
        """The study's search space."""
        return search_space.parse(self.spec.search_space)

    def __call__(self, trial: optuna.Trial) -> list[float]:
        """Train one configuration; pruning raises ``optuna.TrialPruned``.

        Raises:
            ConfigError: The fit did not log a metric the objective names.
            WorkerStopped: A stop was requested during the fit.
        """
        space = self.space
        outage_s = self.spec.resilience.db_outage_s
        # Sampling writes each param to the study: a database restart is ridden out here as
        # during the fit (params already written are read back, not sampled again).
        values = with_retries(lambda: space.suggest(trial), outage_s)
        groups, keyed = space.assignments(values)
        keyed["paths.output_dir"] = str(self.runs_dir / self.study_name / f"trial-{trial.number}")
        if self.threads is not None:
            keyed["threads"] = self.threads
        cfg = self.configs.compose(groups, keyed)
        metrics_wanted = self.spec.objective.metrics
        # Per-epoch values are reported whatever the pruner (NopPruner never prunes): the live
        # view and the report show them. Optuna cannot report multi-objective values.
        reports = len(metrics_wanted) == 1
        callbacks: list[Callback] = (
            [ResilientPruning(trial, metrics_wanted[0], outage_s)] if reports else []
        )
        if self.tracker is None:
            return self._fit(cfg, callbacks, [])
        composed = OmegaConf.to_container(cfg, resolve=True)
        run = self.tracker.start(trial, values, composed)  # type: ignore[arg-type]
        if run is None:
            return self._fit(cfg, callbacks, [])
        run.best = EpochBest(metrics_wanted[0], self.spec.objective.directions[0] == "maximize")
        callbacks += [run.best, EpochLearningRate(run.logger)]
        try:
            result = self._fit(cfg, callbacks, [run.logger])
        except optuna.TrialPruned:
            run.finish(TrialState.PRUNED)
            raise
        except BaseException:
            run.finish(TrialState.FAIL)
            raise
        run.finish(TrialState.COMPLETE, result[0])
        return result

    def _fit(
        self, cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]
    ) -> list[float]:
        """The fit's values of the objective's metrics."""
        try:
            metrics = fit.run(cfg, [StopOnRequest(self.stop), *callbacks], loggers)
        except SIGTERMException:  # Lightning's own flag got there first
            raise WorkerStopped from None
        metrics_wanted = self.spec.objective.metrics
        missing = [name for name in metrics_wanted if name not in metrics]
        if missing:
            raise ConfigError(
                f"the run logged no `{missing[0]}` (logged: {', '.join(sorted(metrics))}); "
                "fix `optimized_metric` in the experiment."
            )
        return [metrics[name] for name in metrics_wanted]
