"""Path options that refuse an empty value.

An unset shell variable (``--runs-dir "$RUNS"``) reaches the CLI as ``""``, which ``Path``
reads as the current folder: a launch would then write its runs, or look for its configs, in
whatever folder it was started from, and say nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["RunsDir", "path_option"]


def path_option(help: str, **kwargs: Any) -> Any:
    """A ``typer.Option`` for a path; ``""`` (or blanks) is refused with exit code 2."""
    return typer.Option(help=help, parser=_non_empty_path, metavar="<path>", **kwargs)


def _non_empty_path(value: str | Path) -> Path:
    if isinstance(value, Path):  # the option's default, handed over as it is
        return value
    if not value.strip():
        raise typer.BadParameter("is empty (an unset shell variable?); give a folder")
    return Path(value)


RunsDir = Annotated[Path, path_option(help="Run folders, as given to `hpo launch`.")]
"""``--runs-dir`` of the commands that read a launch's run folders."""
