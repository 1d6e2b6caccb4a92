"""``hpo launch``: create or resume a study and run it to its budget with N workers."""

from __future__ import annotations

import datetime
import enum
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from trainer.spec import Budget, Resilience, Tracking
from trainer.storage import check_study_name

from orchestrator import launch as launcher
from orchestrator import study as studies
from orchestrator.backends import WorkerResources
from orchestrator.commands._backend import BackendName, make_backend
from orchestrator.commands._storage import STORAGE_HELP, resolve_storage_pair
from orchestrator.console import guard, stderr, stdout
from orchestrator.errors import ConfigError
from orchestrator.settings import (
    TRAINER_IMAGE,
)
from orchestrator.study_run import log_study_run_at
from orchestrator.summary import print_summary

SEARCH, WORKERS, RESILIENCE, TRACKING = "Search", "Workers", "Resilience", "Tracking"


class TrackerName(enum.StrEnum):
    """Where trial curves go."""

    wandb = "wandb"
    none = "none"


class SamplerName(enum.StrEnum):
    """Optuna samplers; TPE runs with constant_liar and multivariate."""

    tpe = "tpe"
    random = "random"
    cmaes = "cmaes"
    qmc = "qmc"


class PrunerName(enum.StrEnum):
    """Optuna pruners, fed the monitored metric each epoch."""

    median = "median"
    hyperband = "hyperband"
    none = "none"


def launch(
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Hydra overrides for every trial, e.g. trainer.max_epochs=10."),
    ] = None,
    *,
    experiment: Annotated[
        str, typer.Option(help="Experiment in conf/experiment.", rich_help_panel=SEARCH)
    ] = "digits_mlp",
    trials: Annotated[
        int,
        typer.Option(
            min=1, help="Study-wide budget of COMPLETE + PRUNED trials.", rich_help_panel=SEARCH
        ),
    ] = 20,
    study: Annotated[
        str | None,
        typer.Option(
            help="Study name (default: <experiment>-<time>); an existing one is resumed.",
            rich_help_panel=SEARCH,
        ),
    ] = None,
    sampler: Annotated[
        SamplerName, typer.Option(case_sensitive=False, rich_help_panel=SEARCH)
    ] = SamplerName.tpe,
    pruner: Annotated[
        PrunerName, typer.Option(case_sensitive=False, rich_help_panel=SEARCH)
    ] = PrunerName.median,
    seed: Annotated[
        int | None,
        typer.Option(help="Sampler seed (worker k uses seed + k).", rich_help_panel=SEARCH),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Seconds after the study's start when no new trial starts.",
            rich_help_panel=SEARCH,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Parallel workers (more than 4 x cores needs --force).",
            rich_help_panel=WORKERS,
        ),
    ] = 2,
    config_dir: Annotated[
        Path | None,
        typer.Option(
            help="Your own Hydra config folder (experiment/, model/, search_space/...), searched "
            "after hpo's; mounted read-only into the workers.",
            show_default=False,
            rich_help_panel=SEARCH,
        ),
    ] = None,
    image: Annotated[
        str,
        typer.Option(
            help="Workers' image: the trainer image, or yours built FROM it (docker).",
            rich_help_panel=WORKERS,
        ),
    ] = f"{TRAINER_IMAGE}:latest",
    cpus_per_worker: Annotated[
        float | None,
        typer.Option(
            min=0.1, help="CPUs per worker (default: cores / workers).", rich_help_panel=WORKERS
        ),
    ] = None,
    memory_per_worker: Annotated[
        str,
        typer.Option(
            help="Memory limit per worker container, swap included (e.g. 2g); the workers "
            "together must fit the engine's memory.",
            rich_help_panel=WORKERS,
        ),
    ] = "2g",
    gpus_per_worker: Annotated[
        int,
        typer.Option(
            min=0,
            help="GPUs per worker container, assigned round-robin over the host's GPUs "
            "(needs the NVIDIA runtime and a CUDA build of torch in the image).",
            rich_help_panel=WORKERS,
        ),
    ] = 0,
    restart_workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Restarts allowed per worker that exits with an error (crash, OOM).",
            rich_help_panel=WORKERS,
        ),
    ] = 0,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Return once every worker runs; they go on to the budget without this "
            "command (follow with `hpo status` and `hpo logs`).",
            rich_help_panel=WORKERS,
        ),
    ] = False,
    backend: Annotated[
        BackendName,
        typer.Option(case_sensitive=False, help="Where workers run.", rich_help_panel=WORKERS),
    ] = BackendName.docker,
    storage: Annotated[
        str | None,
        typer.Option(
            envvar="HPO_STORAGE", help=STORAGE_HELP, show_default=False, rich_help_panel=WORKERS
        ),
    ] = None,
    runs_dir: Annotated[
        Path,
        typer.Option(
            help="Run folders: <runs-dir>/<study>/trial-<n>, worker logs.", rich_help_panel=WORKERS
        ),
    ] = Path("hpo-runs"),
    heartbeat: Annotated[
        int,
        typer.Option(
            min=1, help="Seconds between a trial's heartbeats.", rich_help_panel=RESILIENCE
        ),
    ] = 10,
    grace: Annotated[
        int,
        typer.Option(
            min=2,
            help="Seconds without heartbeat before a trial is failed (>= 2 x heartbeat).",
            rich_help_panel=RESILIENCE,
        ),
    ] = 30,
    max_retry: Annotated[
        int,
        typer.Option(
            min=0, help="Retries of a failed trial, same params.", rich_help_panel=RESILIENCE
        ),
    ] = 1,
    max_failed: Annotated[
        int,
        typer.Option(
            min=0, help="Stop once more trials than this have failed.", rich_help_panel=RESILIENCE
        ),
    ] = 10,
    tracking: Annotated[
        TrackerName,
        typer.Option(
            case_sensitive=False,
            help="One W&B run per trial (offline files under <runs-dir>/<study>/wandb unless "
            "WANDB_API_KEY is set; `hpo sync` uploads them), or none.",
            rich_help_panel=TRACKING,
        ),
    ] = TrackerName.wandb,
    wandb_project: Annotated[
        str, typer.Option(help="W&B project of the runs.", rich_help_panel=TRACKING)
    ] = "hpo",
    wandb_entity: Annotated[
        str | None,
        typer.Option(
            help="W&B entity (team or user); default: the key's.",
            show_default=False,
            rich_help_panel=TRACKING,
        ),
    ] = None,
    write_report: Annotated[
        bool,
        typer.Option(
            "--report/--no-report",
            help="At the end, write `hpo report` (<runs-dir>/<study>/report/index.html).",
        ),
    ] = True,
    force: Annotated[
        bool, typer.Option(help="Resume a study whose spec changed; allow many workers.")
    ] = False,
) -> None:
    """Create (or resume) a study and run it to its budget with N parallel workers."""
    name = guard(check_study_name, study or f"{experiment}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    guard(_check_workers, workers, force)
    if detach and backend is BackendName.local:
        guard(_refuse, "`--detach` needs the docker backend: local workers end with this command.")
    budget = guard(Budget, trials, timeout)
    resilience = guard(Resilience, heartbeat, grace, max_retry, max_failed)
    tracker = guard(Tracking, tracking.value, wandb_project, wandb_entity)
    spec = guard(
        studies.build_spec,
        experiment,
        overrides or [],
        budget=budget,
        sampler=sampler.value,
        pruner=pruner.value,
        seed=seed,
        resilience=resilience,
        config_dir=config_dir,
        tracking=tracker,
    )
    cpus = cpus_per_worker or (os.cpu_count() or 1) / workers
    resources = guard(WorkerResources, cpus=cpus, memory=memory_per_worker, gpus=gpus_per_worker)
    runner = guard(make_backend, backend, name, image, resources, workers)
    url, network_url = guard(resolve_storage_pair, storage, start=True)
    # Containers reach Postgres by its name on the private network; local processes cannot.
    worker_url = network_url if backend is BackendName.docker else url
    guard(studies.check_connections, url, name, workers)
    guard(studies.create_or_resume, url, name, spec, force=force)
    plan = launcher.LaunchPlan(
        name,
        url,
        worker_url,
        workers,
        runs_dir.resolve(),
        threads=max(1, int(cpus)),
        config_dir=config_dir.resolve() if config_dir else None,
        restart_workers=restart_workers,
        detach=detach,
    )
    where = f"logs in {runs_dir / name}"
    stdout.print(
        f"study {name}: {workers} {backend} workers, budget {trials}, {where}", soft_wrap=True
    )
    signal.signal(signal.SIGTERM, _interrupt)  # `docker stop`, `compose down`: as Ctrl-C
    try:
        final = guard(launcher.run, plan, spec, runner, stdout)
    except KeyboardInterrupt:
        stderr.print(
            "stopped: the workers' current trials are marked FAIL; the same command resumes."
        )
        raise typer.Abort() from None
    if detach:
        stdout.print(
            f"detached: {workers} workers run on; follow with `hpo status {name}` and "
            f"`hpo logs {name} --follow`, stop with `hpo stop {name}`, then `hpo gc`."
        )
        return
    if spec.tracking.enabled:
        _log_study_run(url, name, runs_dir)
    code = print_summary(final, launcher.failed_workers(final), max_failed)
    if write_report:
        _write_report(url, name, runs_dir)
    raise typer.Exit(code=code)


def _check_workers(workers: int, force: bool) -> None:
    limit = 4 * (os.cpu_count() or 1)
    if workers > limit and not force:
        rule = f"is more than 4 x cores ({limit}); pass `--force` if you mean it"
        raise ConfigError(f"`--workers` {workers} {rule}.")


def _refuse(message: str) -> None:
    raise ConfigError(message)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the workers as Ctrl-C does, instead of leaving them behind."""
    raise KeyboardInterrupt


def _log_study_run(url: str, name: str, runs_dir: Path) -> None:
    """The study's W&B run; if it fails, a warning, never the launch's exit code."""
    try:
        with stdout.status("logging the study run (W&B)"):
            log_study_run_at(url, name, runs_dir)
    except Exception as e:  # W&B's own errors are many; none may end a finished study badly
        stderr.print(f"warning: the study's W&B run was not logged ({e}); `hpo wandb {name}`.")


def _write_report(url: str, name: str, runs_dir: Path) -> None:
    """The study's report; if it fails, a warning (`hpo report` can write it later)."""
    from orchestrator import report  # matplotlib and plotly: ~0.5 s, paid only for a report

    try:
        with stdout.status("drawing the report"):
            index = report.write_report(url, name, runs_dir, runs_dir / name / "report")
    except Exception as e:  # a figure library's error must not hide the study's result
        stderr.print(f"warning: no report ({e}); `hpo report {name}` tries again.")
        return
    stdout.print(f"report: {index.resolve()}", markup=False, soft_wrap=True)
