"""``hpo wandb`` and ``hpo sync``: a study's W&B runs after the fact."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse
from urllib.request import getproxies

import typer
from optuna.trial import TrialState
from trainer.wandb_runs import FLUSH_INTERVAL_S, run_id, wandb_dir, wandb_url, wants_online

from orchestrator import reading
from orchestrator.commands._paths import RunsDir
from orchestrator.commands._storage import StorageOption, resolve_storage
from orchestrator.console import guard, stderr, stdout
from orchestrator.errors import ConfigError
from orchestrator.folders import check_writable_folder
from orchestrator.offline_runs import OfflineRun, find_offline_runs, run_names, sync_runs
from orchestrator.study_run import log_study_run_at

StudyName = Annotated[str, typer.Argument(help="Study name, as `hpo studies` lists it.")]
REACH_TIMEOUT_S = 5.0


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
    where = "to W&B" if run.online else f"offline in {wandb_dir(runs_dir, name) / 'wandb'}"
    unreachable = " (W&B could not be reached)" if wants_online() and not run.online else ""
    stdout.print(f"study run {run.id} of {name} logged {where}{unreachable}", soft_wrap=True)


def sync(
    name: StudyName, runs_dir: RunsDir = Path("hpo-runs"), storage: StorageOption = None
) -> None:
    """Upload a study's offline W&B runs (`wandb sync`): each once, once its trial has ended."""
    runs = find_offline_runs(runs_dir, name)
    if not runs:
        guard(_refuse, f"no offline W&B runs under {wandb_dir(runs_dir, name) / 'wandb'}.")
    if not wants_online():
        guard(_refuse, "no W&B key: set WANDB_API_KEY (or run `wandb login`) first.")
    if all(run.synced for run in runs):
        stdout.print(f"all {len(runs)} W&B run(s) of {name} were uploaded before: nothing to do")
        return
    guard(_check_reachable, wandb_url())
    states = guard(_trial_states, guard(resolve_storage, storage, start=False), name)
    running = {run_id(name, number) for number, state in states.items() if not state.is_finished()}
    outcome = sync_runs(runs, _wandb_sync, running)
    earlier = f"; {len(outcome.before)} uploaded before" if outcome.before else ""
    stdout.print(
        f"uploaded {len(outcome.uploaded)} W&B run(s) of {name} to {wandb_url()}{earlier}",
        soft_wrap=True,
    )
    names = run_names(name, list(states))
    if outcome.running:
        _warn(
            f"{_runs(outcome.running, names)} left for a later sync: their trials still run, "
            "and a run is uploaded once (`hpo sync` again when they end)."
        )
    if outcome.empty:
        _warn(
            f"{_runs(outcome.empty, names)} not uploaded: no records. W&B writes a run's "
            f"records every {FLUSH_INTERVAL_S:g} s and as it ends; "
            "a worker killed sooner leaves none (the trial's curves are in "
            f"{runs_dir / name}/trial-<n>/csv)."
        )
    if outcome.unread:
        _warn(f"{_runs(outcome.unread, names)} not uploaded: see W&B's errors above.")
    if outcome.exit_code != 0 or outcome.unread:
        raise typer.Exit(code=1)


def _trial_states(url: str, name: str) -> dict[int, TrialState]:
    """Each trial's state, by number: the runs of running trials must wait."""
    with reading.opened(url, name) as study:
        return {trial.number: trial.state for trial in study.get_trials(deepcopy=False)}


def _wandb_sync(folders: Sequence[Path]) -> int:
    """``wandb sync``, run from the study's folder.

    It writes its own logs into ``./wandb``: the study's W&B folder then, not a new ``wandb/``
    in whatever folder hpo was run from.
    """
    study_folder = folders[0].parent.parent
    command = [str(Path(sys.executable).parent / "wandb"), "sync"]
    command += [str(folder.resolve()) for folder in folders]
    return subprocess.run(command, cwd=study_folder, check=False).returncode


def _runs(runs: list[OfflineRun], names: dict[str, str]) -> str:
    """``2 W&B run(s) (trial 3, the study run)``; a run of no trial here by its folder."""
    listed = ", ".join(names.get(run.id, run.folder.name) for run in runs)
    return f"{len(runs)} W&B run(s) ({listed})"


def _warn(message: str) -> None:
    stderr.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


def _check_reachable(url: str) -> None:
    """Refuse at once when the W&B server does not answer: `wandb sync` would retry for minutes.

    Raises:
        ConfigError: No connection to the server's host and port within ``REACH_TIMEOUT_S``.
    """
    parsed = urlparse(url)
    if parsed.scheme in getproxies():  # the way out is a proxy's: leave it to W&B
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname or "", port), timeout=REACH_TIMEOUT_S).close()
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise ConfigError(
            f"cannot reach W&B at {url} ({reason}); the runs stay offline: run `hpo sync` again "
            "where W&B can be reached."
        ) from None


def _refuse(message: str) -> None:
    raise ConfigError(message)
