"""The options of ``hpo launch``, one annotated type each, so the command reads as what it does.

Typer reads a parameter's help, panel and bounds from its ``Annotated`` type; declared here, the
same declarations serve ``launch``'s signature without filling it.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.commands._backend import BackendName
from orchestrator.commands._paths import path_option
from orchestrator.commands._storage import STORAGE_HELP
from orchestrator.settings import TRAINER_IMAGE

SEARCH, WORKERS, RESILIENCE, TRACKING = "Search", "Workers", "Resilience", "Tracking"
DEFAULT_IMAGE = f"{TRAINER_IMAGE}:latest"
DEFAULT_MEMORY = "2g"


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


Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Hydra overrides for every trial, e.g. trainer.max_epochs=10."),
]
Experiment = Annotated[
    str, typer.Option(help="Experiment in conf/experiment.", rich_help_panel=SEARCH)
]
Trials = Annotated[
    int,
    typer.Option(
        min=1, help="Study-wide budget of COMPLETE + PRUNED trials.", rich_help_panel=SEARCH
    ),
]
Study = Annotated[
    str | None,
    typer.Option(
        help="Study name (default: <experiment>-<time>); an existing one is resumed.",
        rich_help_panel=SEARCH,
    ),
]
Sampler = Annotated[SamplerName, typer.Option(case_sensitive=False, rich_help_panel=SEARCH)]
Pruner = Annotated[PrunerName, typer.Option(case_sensitive=False, rich_help_panel=SEARCH)]
Seed = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Sampler seed: each worker's sampler is seeded from it and the number of its "
        "first trial, so no two workers draw alike (restarts, resumes, other machines "
        "included). Default: random.",
        rich_help_panel=SEARCH,
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        min=1,
        help="Seconds after the study's start when no new trial starts.",
        rich_help_panel=SEARCH,
    ),
]
Workers = Annotated[
    int,
    typer.Option(
        min=1,
        help="Parallel workers (more than 4 x cores needs --force).",
        rich_help_panel=WORKERS,
    ),
]
ConfigDir = Annotated[
    Path | None,
    path_option(
        help="Your own Hydra config folder (experiment/, model/, search_space/...), searched "
        "after hpo's; mounted read-only into the workers.",
        show_default=False,
        rich_help_panel=SEARCH,
    ),
]
Image = Annotated[
    str | None,
    typer.Option(
        help=f"Workers' image (docker only): {DEFAULT_IMAGE}, or yours built FROM it.",
        show_default=False,
        rich_help_panel=WORKERS,
    ),
]
CpusPerWorker = Annotated[
    float | None,
    typer.Option(
        min=0.1, help="CPUs per worker (default: cores / workers).", rich_help_panel=WORKERS
    ),
]
MemoryPerWorker = Annotated[
    str | None,
    typer.Option(
        help=f"Memory limit per worker container, swap included (docker only; default "
        f"{DEFAULT_MEMORY}); the workers together must fit the engine's memory.",
        show_default=False,
        rich_help_panel=WORKERS,
    ),
]
GpusPerWorker = Annotated[
    int,
    typer.Option(
        min=0,
        help="GPUs per worker, dealt round-robin over the host's GPUs (docker: needs the "
        "NVIDIA Container Toolkit and a CUDA build of torch in the image; local: over "
        "CUDA_VISIBLE_DEVICES where set). Trials train on the worker's first GPU "
        "(`trainer.accelerator: auto`); without this flag a worker sees no GPU.",
        rich_help_panel=WORKERS,
    ),
]
RestartWorkers = Annotated[
    int,
    typer.Option(
        min=0,
        help="Restarts allowed per worker that exits with an error (crash, OOM).",
        rich_help_panel=WORKERS,
    ),
]
Detach = Annotated[
    bool,
    typer.Option(
        "--detach",
        help="Return once every worker runs; they go on to the budget without this "
        "command (follow with `hpo status` and `hpo logs`).",
        rich_help_panel=WORKERS,
    ),
]
Backend = Annotated[
    BackendName,
    typer.Option(case_sensitive=False, help="Where workers run.", rich_help_panel=WORKERS),
]
Storage = Annotated[
    str | None,
    typer.Option(
        envvar="HPO_STORAGE", help=STORAGE_HELP, show_default=False, rich_help_panel=WORKERS
    ),
]
RunsDir = Annotated[
    Path,
    path_option(
        help="Run folders: <runs-dir>/<study>/trial-<n>, worker logs.", rich_help_panel=WORKERS
    ),
]
Heartbeat = Annotated[
    int,
    typer.Option(min=1, help="Seconds between a trial's heartbeats.", rich_help_panel=RESILIENCE),
]
Grace = Annotated[
    int,
    typer.Option(
        min=2,
        help="Seconds without heartbeat before a trial is failed (>= 2 x heartbeat).",
        rich_help_panel=RESILIENCE,
    ),
]
DbOutage = Annotated[
    int,
    typer.Option(
        min=1,
        help="Seconds workers and this command wait for an unreachable database (a restart, a "
        "failover) before they give up. Longer than --grace is fine: trials whose heartbeat "
        "lapsed meanwhile are failed and retried once it is back.",
        rich_help_panel=RESILIENCE,
    ),
]
MaxRetry = Annotated[
    int,
    typer.Option(min=0, help="Retries of a failed trial, same params.", rich_help_panel=RESILIENCE),
]
MaxFailed = Annotated[
    int,
    typer.Option(
        min=0, help="Stop once more trials than this have failed.", rich_help_panel=RESILIENCE
    ),
]
Tracking = Annotated[
    TrackerName,
    typer.Option(
        case_sensitive=False,
        help="One W&B run per trial (offline files under <runs-dir>/<study>/wandb without a "
        "key, WANDB_API_KEY or `wandb login`'s; `hpo sync` uploads them), or none.",
        rich_help_panel=TRACKING,
    ),
]
WandbProject = Annotated[
    str, typer.Option(help="W&B project of the runs.", rich_help_panel=TRACKING)
]
WandbEntity = Annotated[
    str | None,
    typer.Option(
        help="W&B entity (team or user); default: the key's.",
        show_default=False,
        rich_help_panel=TRACKING,
    ),
]
WriteReport = Annotated[
    bool,
    typer.Option(
        "--report/--no-report",
        help="At the end, write `hpo report` (<runs-dir>/<study>/report/index.html).",
    ),
]
Force = Annotated[bool, typer.Option(help="Resume a study whose spec changed; allow many workers.")]
