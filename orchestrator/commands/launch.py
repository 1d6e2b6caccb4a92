"""``hpo launch``: create or resume a study and run it to its budget with N workers."""

from __future__ import annotations

import datetime
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import typer
from trainer.signals import SignalledStop
from trainer.spec import Budget, ExperimentSpec, Resilience, Tracking, check_wandb_names
from trainer.storage import check_study_name
from trainer.wandb_runs import wandb_url, wants_online

from orchestrator import launch as launcher
from orchestrator import study as studies
from orchestrator.backends import Backend, WorkerResources
from orchestrator.commands import _launch_options as opt
from orchestrator.commands._backend import BackendName, make_backend
from orchestrator.commands._storage import check_reachable_from_containers, resolve_storage_pair
from orchestrator.console import guard, stderr, stdout
from orchestrator.errors import ConfigError
from orchestrator.folders import check_writable_folder
from orchestrator.hosts import is_loopback
from orchestrator.study_run import log_study_run_at
from orchestrator.summary import print_summary


def launch(
    overrides: opt.Overrides = None,
    *,
    experiment: opt.Experiment = "digits_mlp",
    trials: opt.Trials = 20,
    study: opt.Study = None,
    sampler: opt.Sampler = opt.SamplerName.tpe,
    pruner: opt.Pruner = opt.PrunerName.median,
    seed: opt.Seed = None,
    timeout: opt.Timeout = None,
    workers: opt.Workers = 2,
    config_dir: opt.ConfigDir = None,
    image: opt.Image = None,
    cpus_per_worker: opt.CpusPerWorker = None,
    memory_per_worker: opt.MemoryPerWorker = None,
    gpus_per_worker: opt.GpusPerWorker = 0,
    restart_workers: opt.RestartWorkers = 0,
    detach: opt.Detach = False,
    backend: opt.Backend = BackendName.docker,
    storage: opt.Storage = None,
    runs_dir: opt.RunsDir = Path("hpo-runs"),
    heartbeat: opt.Heartbeat = 10,
    grace: opt.Grace = 30,
    max_retry: opt.MaxRetry = 1,
    max_failed: opt.MaxFailed = 10,
    db_outage: opt.DbOutage = 300,
    tracking: opt.Tracking = opt.TrackerName.wandb,
    wandb_project: opt.WandbProject = "hpo",
    wandb_entity: opt.WandbEntity = None,
    write_report: opt.WriteReport = True,
    force: opt.Force = False,
) -> None:
    """Create (or resume) a study and run it to its budget with N parallel workers."""
    if study is None:  # not `or`: `--study ""` is a bad name, not a request for the default
        study = f"{experiment}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    name = guard(check_study_name, study)
    guard(_check_workers, workers, force)
    if backend is BackendName.local:
        guard(_check_local_flags, detach=detach, image=image, memory=memory_per_worker)
    budget = guard(Budget, trials, timeout)
    resilience = guard(Resilience, heartbeat, grace, max_retry, max_failed, db_outage)
    tracker = guard(Tracking, tracking.value, wandb_project, wandb_entity)
    guard(check_wandb_names, tracker)
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
    guard(check_writable_folder, runs_dir / name, "--runs-dir")
    cpus = cpus_per_worker or (os.cpu_count() or 1) / workers
    memory = opt.DEFAULT_MEMORY if memory_per_worker is None else memory_per_worker
    resources = guard(WorkerResources, cpus=cpus, memory=memory, gpus=gpus_per_worker)
    launch_id = uuid.uuid4().hex
    image = opt.DEFAULT_IMAGE if image is None else image
    if backend is BackendName.docker and storage:
        guard(check_reachable_from_containers, storage)
    runner = guard(make_backend, backend, name, image, resources, workers, launch_id=launch_id)
    url, network_url = guard(resolve_storage_pair, storage, start=True)
    guard(studies.check_connections, url, name, workers)
    if backend is BackendName.docker and tracker.enabled:
        _warn_of_a_wandb_server_on_loopback(name)
    plan = launcher.LaunchPlan(
        name,
        url,
        # Containers reach Postgres by its name on the private network; local processes cannot.
        network_url if backend is BackendName.docker else url,
        workers,
        runs_dir.resolve(),
        threads=max(1, int(cpus)),
        config_dir=config_dir.resolve() if config_dir else None,
        restart_workers=restart_workers,
        detach=detach,
        launch_id=launch_id,
        machine=runner.machine,
    )
    where = f"logs in {runs_dir / name}"
    ready = _StudyReady(plan, spec, force, f"{workers} {backend} workers, budget {trials}, {where}")
    _run(plan, spec, runner, runs_dir, ready, max_failed=max_failed, write_report=write_report)


@dataclass
class _StudyReady:
    """Creates or resumes the study while the workers start (``launcher.run``'s ``ready``).

    The workers wait until the study is ready for their launch; their imports overlap this.
    """

    plan: launcher.LaunchPlan
    spec: ExperimentSpec
    force: bool
    announcement: str  # printed once the study is ready
    deadline: float | None = None  # the study's, once ready

    def __call__(self) -> bool:
        """Whether there is anything to run; if not, says why (exit code 0: nothing failed).

        Raises:
            typer.Exit: The study was refused (another spec, too many failed trials).
        """
        plan = self.plan
        url, name = plan.storage_url, plan.study
        resumed = guard(
            studies.create_or_resume, url, name, self.spec, force=self.force, launch=plan.launch_id
        )
        if resumed.idle is not None:
            stdout.print(f"study {name}: {resumed.idle}", soft_wrap=True)
            return False
        self.deadline = resumed.deadline
        stdout.print(f"study {name}: {self.announcement}", soft_wrap=True)
        return True


def _run(
    plan: launcher.LaunchPlan,
    spec: ExperimentSpec,
    runner: Backend,
    runs_dir: Path,
    ready: _StudyReady,
    *,
    max_failed: int,
    write_report: bool,
) -> None:
    """Run the workers to the budget, then log the study run, summarise and draw the report.

    Nothing more once ``ready`` found nothing to run.

    Raises:
        typer.Exit: With the summary's code (non-zero when the study failed).
        typer.Abort: Ctrl-C or SIGTERM; the workers were stopped.
    """
    name, url = plan.study, plan.storage_url
    try:
        # `docker stop`, `compose down` (SIGTERM) as Ctrl-C; both honoured between steps.
        with SignalledStop().installed() as stop:
            final = guard(launcher.run, plan, spec, runner, stdout, stop, ready=ready)
    except KeyboardInterrupt:
        stderr.print(
            "stopped: the workers' current trials are marked FAIL; the same command resumes."
        )
        raise typer.Abort() from None
    if final is None:
        return
    if plan.detach:
        stdout.print(
            f"detached: {plan.workers} workers run on; follow with `hpo status {name}` and "
            f"`hpo logs {name} --follow`, stop with `hpo stop {name}`, then `hpo gc`."
        )
        return
    if spec.tracking.enabled:
        _log_study_run(url, name, runs_dir)
    code = print_summary(final, launcher.failed_workers(final), max_failed, ready.deadline)
    if write_report:
        _write_report(url, name, runs_dir)
    raise typer.Exit(code=code)


def _check_workers(workers: int, force: bool) -> None:
    limit = 4 * (os.cpu_count() or 1)
    if workers > limit and not force:
        rule = f"is more than 4 x cores ({limit}); pass `--force` if you mean it"
        raise ConfigError(f"`--workers` {workers} {rule}.")


def _check_local_flags(*, detach: bool, image: str | None, memory: str | None) -> None:
    """Refuse the flags only containers honour: a local launch would silently drop them."""
    if detach:
        raise ConfigError(
            "`--detach` needs the docker backend: local workers end with this command."
        )
    if image is not None:
        raise ConfigError(
            "`--image` needs the docker backend: local workers run the trainer package "
            "installed here (install your model's package here and pass `--config-dir`)."
        )
    if memory is not None:
        raise ConfigError(
            "`--memory-per-worker` needs the docker backend: local workers are processes of "
            "this machine, with no memory limit of their own."
        )


def _warn_of_a_wandb_server_on_loopback(study: str) -> None:
    """Say once, up front, why worker containers will log offline: W&B's server is on loopback.

    Each worker would try it anyway (the key may name a server they reach another way) and go
    offline after ``WANDB_INIT_TIMEOUT``, with a line in its log that the live view does not show.
    """
    server = wandb_url()
    if not wants_online() or not is_loopback(urlsplit(server).hostname or ""):
        return
    stderr.print(
        f"warning: W&B's server {server} (WANDB_BASE_URL) is on this host's loopback, which "
        "worker containers cannot reach: their trial runs will be written offline; "
        f"`hpo sync {study}` uploads them from here once the study ends (or `--backend local`).",
        markup=False,
        soft_wrap=True,
    )


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
