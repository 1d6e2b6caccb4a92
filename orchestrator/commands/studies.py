"""``hpo studies``, ``hpo status``, ``hpo best``, ``hpo delete``: look at and tidy studies."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from optuna.trial import TrialState
from rich.table import Table
from trainer.spec import ExperimentSpec

from orchestrator import reading
from orchestrator.commands._storage import StorageOption, resolve_storage
from orchestrator.console import guard, stdout

Storage = StorageOption
StudyName = Annotated[str, typer.Argument(help="Study name, as `hpo studies` lists it.")]


def studies(storage: Storage = None) -> None:
    """List the studies with their progress and best value (or Pareto front size)."""
    url = guard(resolve_storage, storage, start=False)
    table = Table("study", "finished", "best", "directions", box=None, header_style="dim")
    for row in guard(reading.rows, url):
        budget = f"/{row.budget}" if row.budget is not None else ""
        best = "-" if row.best is None else f"{row.best:.4f}"
        if row.front is not None:
            best = f"front of {row.front}"  # `hpo best NAME` lists them
        table.add_row(row.name, f"{row.finished}{budget}", best, ", ".join(row.directions))
    stdout.print(table)


def status(name: StudyName, storage: Storage = None) -> None:
    """Show a study's trials by state, its running trials and its latest failures."""
    url = guard(resolve_storage, storage, start=False)
    loaded = guard(reading.load, url, name)
    trials, spec = loaded.trials, loaded.spec
    counts = {state: sum(t.state is state for t in trials) for state in TrialState}
    finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    stdout.print(f"[bold]{name}[/]: {finished}/{spec.budget.trials} finished ({spec.experiment})")
    stdout.print("  ".join(f"{state.name.lower()} {n}" for state, n in counts.items() if n))
    worker_name = reading.WorkerNames(trials)
    for trial in trials:
        if trial.state is TrialState.RUNNING:
            note = reading.running_note(trial, worker_name(trial))
            stdout.print(f"running: trial {trial.number} {note}")
    for trial in [t for t in trials if t.state is TrialState.FAIL][-5:]:
        stdout.print(
            f"failed: trial {trial.number}: {reading.fail_reason(trial)}",
            markup=False,
            soft_wrap=True,
        )


def best(
    name: StudyName,
    storage: Storage = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> None:
    """Show the best trial (the Pareto front when several objectives) and how to retrain it."""
    url = guard(resolve_storage, storage, start=False)
    loaded = guard(reading.load, url, name)
    found = [
        {
            "number": t.number,
            "values": t.values,
            "params": t.params,
            "command": reading.retrain_command(loaded.spec, t.params),
        }
        for t in loaded.best
    ]
    metrics = list(loaded.spec.objective.metrics)
    if as_json:
        shown = {"study": name, "metrics": metrics, "best": found}
        stdout.print(json.dumps(shown), markup=False, soft_wrap=True)
        return
    if not found:
        stdout.print(f"{name}: no completed trial yet")
    elif len(metrics) > 1:
        stdout.print(f"{name}: Pareto front of {len(found)} trials ({_objective(loaded.spec)})")
    for entry in found:
        named = reading.scores(metrics, entry["values"])
        stdout.print(
            f"trial {entry['number']}: {named} {entry['params']}", markup=False, soft_wrap=True
        )
        stdout.print(f"  retrain: {entry['command']}", markup=False, soft_wrap=True)


def _objective(spec: ExperimentSpec) -> str:
    """``maximize val_acc, minimize val_loss``: which way each metric of the front is better."""
    objective = spec.objective
    return ", ".join(
        f"{d} {m}" for m, d in zip(objective.metrics, objective.directions, strict=True)
    )


def delete(
    name: StudyName,
    storage: Storage = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a study and all its trials from the database (run folders are kept)."""
    url = guard(resolve_storage, storage, start=False)
    trials, running = guard(_trials_and_running, url, name)  # no such study: said before asking
    if not yes:
        still = f"; {running} still RUNNING (`hpo stop {name}` first?)" if running else ""
        typer.confirm(f"Delete study {name} and its {trials} trials{still}?", abort=True)
    guard(reading.delete, url, name)
    stdout.print(f"deleted {name}")


def _trials_and_running(url: str, name: str) -> tuple[int, int]:
    with reading.opened(url, name) as study:
        trials = study.get_trials(deepcopy=False)
    return len(trials), sum(t.state is TrialState.RUNNING for t in trials)
