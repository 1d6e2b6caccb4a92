"""One W&B run per trial, logged live from the worker that runs it, never at the trial's cost.

Each run is grouped by study and named ``<study>-t<number>``; its id is derived from the study
and the trial number, so a trial links to exactly one run, whoever uploads it. Curves reach it
through Lightning's ``WandbLogger`` (per epoch); the trial's end (state, value, best epoch,
duration) goes in its summary, and a FAIL finishes it with exit code 1.

Without an API key the run is written offline under ``<runs>/<study>/wandb``. With one
(``WANDB_API_KEY``, or a netrc entry: ``wandb_runs.api_key``) it goes online; if W&B cannot
start there, or does not take a finished run's data in time, the worker warns once and logs
offline from then on: tracking must never cost a trial.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from optuna.trial import TrialState

from trainer import __version__
from trainer.retries import retry_of
from trainer.spec import ExperimentSpec
from trainer.storage import with_retries
from trainer.wandb_runs import (
    RUN_ID_ATTR,
    init_run,
    online_finish_timeout_s,
    run_id,
    wandb_dir,
    wants_online,
)

__all__ = ["RUN_ID_ATTR", "EpochBest", "EpochLearningRate", "Tracker", "TrialRun", "run_id"]

log = logging.getLogger("trainer.worker")


@dataclass
class Tracker:
    """Starts the trial runs of one worker; remembers whether online logging works here."""

    spec: ExperimentSpec
    study: str
    runs_dir: Path
    worker_id: int
    machine: str = field(default_factory=socket.gethostname)  # as the worker labels its trials
    online: bool = field(default_factory=wants_online)
    warned: bool = False  # that W&B cannot start at all here (said once per worker)

    @property
    def outage_s(self) -> float:
        """How long the run's reads and writes to the study wait out a database outage."""
        return self.spec.resilience.db_outage_s

    def start(
        self, trial: optuna.Trial, params: dict[str, Any], cfg: dict[str, Any]
    ) -> TrialRun | None:
        """Start the run of ``trial``: offline if online fails, none if W&B cannot start at all.

        Never raises for W&B's sake: tracking must not cost a trial.
        """
        number = trial.number
        tracking = self.spec.tracking
        settings = {
            "project": tracking.project,
            "entity": tracking.entity,
            "group": self.study,
            "name": f"{self.study}-t{number}",
            "id": run_id(self.study, number),
            "job_type": "trial",
            "tags": [self.spec.experiment, self.spec.sampler, f"w{self.worker_id}"],
            "config": self._config(trial, params, cfg),
            "dir": str(wandb_dir(self.runs_dir, self.study)),
        }
        try:
            wandb_dir(self.runs_dir, self.study).mkdir(parents=True, exist_ok=True)
            run, self.online = init_run(settings, self.online)
        except Exception as e:  # offline too: a full disk, a bad setting, W&B's own bug
            if not self.warned:
                log.warning("W&B cannot start (%s); trials run without W&B runs", e)
                self.warned = True
            return None
        try:
            with_retries(lambda: trial.set_user_attr(RUN_ID_ATTR, run.id), self.outage_s)
        except BaseException:  # the database stayed away, or a peer failed the trial meanwhile
            with contextlib.suppress(Exception):  # W&B's own failure must not hide why
                run.finish(exit_code=1)
            raise
        logger = StepWandbLogger(experiment=run, log_model=False)
        return TrialRun(run, logger, time.monotonic(), on_timeout=self._finish_timed_out)

    def _finish_timed_out(self, run: Any) -> None:
        """W&B did not take a run's last data in time: the next runs go offline, not wait."""
        log.warning(
            "W&B did not take run %s's last data within %g s (rate-limited or failing?); the "
            "rest is on disk in %s. Logging offline from now on (`hpo sync` uploads those runs)",
            run.id,
            online_finish_timeout_s(),
            run.dir,
        )
        self.online = False

    def _config(
        self, trial: optuna.Trial, params: dict[str, Any], cfg: dict[str, Any]
    ) -> dict[str, Any]:
        system_attrs = with_retries(
            lambda: trial.storage.get_trial_system_attrs(trial._trial_id), self.outage_s
        )
        failed = retry_of(system_attrs)
        return {
            **params,
            "hpo": {
                "trial": trial.number,
                "worker": self.worker_id,
                "machine": self.machine,
                "host": socket.gethostname(),  # a container's id
                "image": os.environ.get("HPO_IMAGE", "none"),
                "revision": os.environ.get("HPO_REVISION", "unknown"),
                "version": __version__,
                "seed": self.spec.seed,
                "retry_of": None
                if failed is None
                else {"trial": failed, "run": run_id(self.study, failed)},
            },
            "config": cfg,
        }


@dataclass
class TrialRun:
    """A started trial run: its logger for the fit, and its end."""

    run: Any
    logger: StepWandbLogger
    started: float
    best: EpochBest | None = None
    on_timeout: Callable[[Any], None] | None = None  # told when W&B did not take it in time

    def finish(self, state: TrialState, value: float | None = None) -> None:
        """Record how the trial ended and close the run (exit code 1 for FAIL)."""
        summary: dict[str, Any] = {
            "state": state.name,
            "duration_s": time.monotonic() - self.started,
        }
        if value is not None:
            summary["value"] = value
        if self.best is not None and self.best.epoch is not None:
            summary |= {"best_epoch": self.best.epoch, "best_value": self.best.value}
        try:
            self.run.summary.update(summary)
            if state is TrialState.PRUNED:
                self.run.tags = (*self.run.tags, "pruned")
            self.run.finish(exit_code=1 if state is TrialState.FAIL else 0)
        except TimeoutError:  # an online run, only: see `wandb_runs.online_finish_timeout_s`
            if self.on_timeout is not None:
                self.on_timeout(self.run)
        except Exception as e:
            log.warning("W&B run %s did not finish cleanly: %s", self.run.id, e)


class StepWandbLogger(WandbLogger):
    """Lightning's W&B logger, sending each epoch's metrics in one ``run.log``.

    Lightning hands an epoch's metrics over in pieces: the learning rate at the epoch's first
    step, then validation and train means (with an ``epoch`` key) at its last. Each ``run.log``
    costs about a millisecond, a tenth of a small epoch here, so the pieces are held and sent
    together, at the epoch's last step, once the next epoch's first piece arrives (or at the
    end). Hyper-parameters are not sent again: the run's config already holds the composed
    config.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pending: dict[str, float] = {}
        self._pending_step: int | None = None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Hold ``metrics``; send what is held first if it closed an epoch at an earlier step."""
        if "epoch" in self._pending and step != self._pending_step:
            self._flush()
        self._pending.update(metrics)
        self._pending_step = step

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing: the config given to ``wandb.init`` has them all."""

    def finalize(self, status: str) -> None:
        """Send what is held, then finish as Lightning's logger does."""
        self._flush()
        super().finalize(status)

    def _flush(self) -> None:
        if self._pending:
            super().log_metrics(self._pending, self._pending_step)
        self._pending = {}


class EpochLearningRate(Callback):
    """Each epoch's learning rate, as ``lr`` in that epoch's row of the W&B run.

    Lightning's ``LearningRateMonitor`` hands it to every logger in a call of its own (the CSV
    curves too), under a name that carries the optimizer's class (``lr-AdamW``, ``lr-SGD``), so
    trials of a study that samples the optimizer would not share one chart. Here it goes to the
    run's logger alone, at the epoch's first step, where ``StepWandbLogger`` joins it to the
    epoch's metrics.
    """

    def __init__(self, logger: StepWandbLogger) -> None:
        self.logger = logger

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Hand over the first optimizer's learning rate (its first parameter group's)."""
        if trainer.optimizers:
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            self.logger.log_metrics({"lr": float(lr)}, step=trainer.global_step)


class EpochBest(Callback):
    """The best value of the monitored metric and its epoch, for the run's summary."""

    def __init__(self, monitor: str, maximize: bool) -> None:
        self.monitor = monitor
        self.maximize = maximize
        self.epoch: int | None = None
        self.value: float | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Keep the epoch if it beats the best so far."""
        current = trainer.callback_metrics.get(self.monitor)
        if current is None or trainer.sanity_checking:
            return
        value = float(current)
        better = self.value is None or (value > self.value if self.maximize else value < self.value)
        if better:
            self.epoch, self.value = int(trainer.current_epoch), value
