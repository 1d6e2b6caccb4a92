"""``hpo report``: a study's figures, trials and best configuration in one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.commands._paths import path_option
from orchestrator.commands._storage import StorageOption, resolve_storage
from orchestrator.console import guard, stdout
from orchestrator.folders import check_writable_folder


def report(
    name: Annotated[str, typer.Argument(help="Study name, as `hpo studies` lists it.")],
    out: Annotated[
        Path | None,
        path_option(
            help="Folder for index.html and the PNGs (default: <runs-dir>/<study>/report)."
        ),
    ] = None,
    runs_dir: Annotated[
        Path, path_option(help="Run folders, as given to `hpo launch` (the loss curves).")
    ] = Path("hpo-runs"),
    storage: StorageOption = None,
) -> None:
    """Write the study's report: history, importances, curves, all trials, how to retrain."""
    from orchestrator.report import write_report  # matplotlib and plotly: ~0.5 s, only here

    folder = out or runs_dir / name / "report"
    guard(check_writable_folder, folder, "--out")
    url = guard(resolve_storage, storage, start=False)
    with stdout.status("drawing the report"):
        index = guard(write_report, url, name, runs_dir, folder)
    stdout.print(f"report: {index.resolve()}", markup=False, soft_wrap=True)
