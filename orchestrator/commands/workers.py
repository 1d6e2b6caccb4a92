"""``hpo logs``, ``hpo stop``, ``hpo gc``: a study's workers after the fact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from orchestrator import engine
from orchestrator.console import guard, stdout
from orchestrator.engine import translated
from orchestrator.errors import ConfigError
from orchestrator.settings import Instance

RunsDir = Annotated[Path, typer.Option(help="Run folders, as given to `hpo launch`.")]
FOLLOW_POLL_S = 0.5


def logs(
    study: Annotated[str, typer.Argument(help="Study name.")],
    worker: Annotated[int | None, typer.Option(help="Only this worker (default: all).")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    runs_dir: RunsDir = Path("hpo-runs"),
) -> None:
    """Print a study's worker logs, kept in <runs-dir>/<study>/worker-<k>.log."""
    pattern = "worker-*.log" if worker is None else f"worker-{worker}.log"
    paths = sorted((runs_dir / study).glob(pattern))
    if not paths:
        guard(_no_logs, runs_dir / study, pattern)
    offsets = dict.fromkeys(paths, 0)
    while True:
        for path in paths:
            with path.open(errors="replace") as f:
                f.seek(offsets[path])
                for line in f:
                    prefix = f"{path.stem}| " if len(paths) > 1 else ""
                    stdout.print(
                        prefix + line.rstrip("\n"), markup=False, highlight=False, soft_wrap=True
                    )
                offsets[path] = f.tell()
        if not follow:
            return
        time.sleep(FOLLOW_POLL_S)


def stop(study: Annotated[str, typer.Argument(help="Study name.")]) -> None:
    """Stop and remove a study's worker containers (SIGTERM: their trials end as FAIL)."""
    removed = guard(_remove_workers, {"hpo.study": study}, running_too=True)
    stdout.print(f"stopped and removed {removed} worker container(s) of {study}")


def gc() -> None:
    """Remove worker containers that have ended but were left behind (a killed launcher)."""
    removed = guard(_remove_workers, {}, running_too=False)
    stdout.print(f"removed {removed} ended worker container(s)")


def _remove_workers(labels: dict[str, str], *, running_too: bool) -> int:
    client = engine.connect()
    selector = {**Instance.from_env().labels, **labels}
    filters: dict[str, str | list[str] | bool] = {
        "label": [f"{key}={value}" for key, value in selector.items()] + ["hpo.launch"]
    }
    removed = 0
    with translated("removing worker containers"):
        for container in client.containers.list(all=True, filters=filters):
            if container.status == "running":
                if not running_too:
                    continue
                container.stop(timeout=30)
            container.remove(force=True)
            removed += 1
    client.close()
    return removed


def _no_logs(folder: Path, pattern: str) -> None:
    raise ConfigError(f"no {pattern} in {folder}; pass `--runs-dir` as given to `hpo launch`.")
