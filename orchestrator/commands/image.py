"""``hpo image build``: the trainer image, built offline from a wheelhouse."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from orchestrator import engine, images
from orchestrator.console import guard, stdout
from orchestrator.errors import ConfigError
from orchestrator.settings import PYTHON_BASE_IMAGE, TRAINER_IMAGE, source_root

app = typer.Typer(help="Build the trainer image that every worker runs.", no_args_is_help=True)


@app.command()
def build(
    base: Annotated[
        str,
        typer.Option(help="Base image; where it cannot be pulled, one is bootstrapped offline."),
    ] = PYTHON_BASE_IMAGE,
    source: Annotated[
        Path | None,
        typer.Option(help="hpo source tree to build from (default: this install's, or cwd)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option(help="Rebuild every layer.")] = False,
) -> None:
    """Fill the wheelhouse, find or make the base image, then build with no network inside."""
    root = source or source_root()
    if root is None or not (root / "trainer_image" / "Dockerfile").is_file():
        guard(_no_source, root)
    assert root is not None
    client = guard(engine.connect)
    started = time.monotonic()
    with stdout.status("building the trainer image") as status:

        def log(line: str) -> None:
            if line.startswith("Step "):
                stdout.print(f"  {line}", markup=False, highlight=False, overflow="ellipsis")
            status.update(f"[bold]building[/] {line[:100]}")

        image_id = guard(
            images.build_trainer_image, client, root, base=base, log=log, nocache=no_cache
        )
    elapsed = time.monotonic() - started
    stdout.print(f"built {TRAINER_IMAGE}:latest ({image_id[7:19]}) in {elapsed:.0f} s")


def _no_source(root: Path | None) -> None:
    where = f"`{root}`" if root else "this install or the current folder"
    raise ConfigError(
        f"no hpo source tree (trainer_image/Dockerfile) in {where}: pass `--source` with a clone."
    )
