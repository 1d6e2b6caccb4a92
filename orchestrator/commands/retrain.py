"""``hpo retrain``: the best (or a chosen) trial's configuration, trained again and tested."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator import reading
from orchestrator.commands._paths import path_option
from orchestrator.commands._storage import StorageOption, resolve_storage
from orchestrator.console import guard, stdout
from orchestrator.folders import check_writable_folder
from orchestrator.retrain import pick_trial
from orchestrator.retrain import retrain as retrain_trial


def retrain(
    name: Annotated[str, typer.Argument(help="Study name, as `hpo studies` lists it.")],
    trial: Annotated[
        int | None, typer.Option(help="Trial number (default: the best trial).", show_default=False)
    ] = None,
    runs_dir: Annotated[
        Path, path_option(help="Run folders; the model goes in <runs-dir>/<study>/retrain-<n>.")
    ] = Path("hpo-runs"),
    storage: StorageOption = None,
) -> None:
    """Train a trial's exact configuration again here, keep the model, and report its test score."""
    url = guard(resolve_storage, storage, start=False)
    loaded = guard(reading.load, url, name)
    chosen = guard(pick_trial, loaded.trials, loaded.best, trial)
    out = runs_dir / name / f"retrain-{chosen.number}"
    guard(check_writable_folder, out, "--runs-dir")
    with stdout.status(f"retraining trial {chosen.number}"):
        done = guard(retrain_trial, loaded.spec, chosen.params, out)
    metric = loaded.spec.objective.metrics[0]
    logged = chosen.values[0] if chosen.values else float("nan")
    again = done.metrics.get(metric, float("nan"))
    stdout.print(f"trial {chosen.number}: {metric} {logged:.4f} in the study, {again:.4f} now")
    tested = {k: v for k, v in sorted(done.metrics.items()) if k.startswith("test_")}
    stdout.print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in tested.items()))
    stdout.print(f"model: {done.checkpoint.resolve()}\nconfig: {done.config.resolve()}")
