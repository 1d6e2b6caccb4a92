"""``hpo wandb`` and ``hpo sync``: a study's W&B runs after the fact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from trainer.wandb_runs import wandb_dir, wants_online

from orchestrator.commands._storage import StorageOption, resolve_storage
from orchestrator.console import guard, stdout
from orchestrator.errors import ConfigError
from orchestrator.folders import check_writable_folder
from orchestrator.study_run import log_study_run_at

StudyName = Annotated[str, typer.Argument(help="Study name, as `hpo studies` lists it.")]
RunsDir = Annotated[Path, typer.Option(help="Run folders, as given to `hpo launch`.")]


def wandb(
    name: StudyName,
    runs_dir: RunsDir = Path("hpo-runs"),
    storage: StorageOption = None,
) -> None:
    """Log (again) the study's summary run: all trials in a table, history, importances."""
    guard(check_writable_folder, wandb_dir(runs_dir, name), "--runs-dir")
    url = guard(resolve_storage, storage, start=False)
    with stdout.status("logging the study run"):
        run = guard(log_study_run_at, url, name, runs_dir)
    where = "to W&B" if wants_online() else f"offline in {wandb_dir(runs_dir, name) / 'wandb'}"
    stdout.print(f"study run {run} of {name} logged {where}")


def sync(name: StudyName, runs_dir: RunsDir = Path("hpo-runs")) -> None:
    """Upload a study's offline W&B runs (`wandb sync`; again is harmless: same run ids)."""
    runs = sorted((wandb_dir(runs_dir, name) / "wandb").glob("offline-run-*"))
    if not runs:
        guard(_refuse, f"no offline W&B runs under {wandb_dir(runs_dir, name) / 'wandb'}.")
    if not wants_online():
        guard(_refuse, "no W&B key: set WANDB_API_KEY (or run `wandb login`) first.")
    command = [str(Path(sys.executable).parent / "wandb"), "sync", *map(str, runs)]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise typer.Exit(code=1)
    stdout.print(f"synced {len(runs)} run(s) of {name}")


def _refuse(message: str) -> None:
    raise ConfigError(message)
