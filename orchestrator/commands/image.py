"""``hpo image build`` and ``hpo image postgres``: the images hpo runs, made offline if need be."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from orchestrator import engine, images
from orchestrator.commands._paths import path_option
from orchestrator.console import guard, stderr, stdout
from orchestrator.errors import ConfigError
from orchestrator.settings import POSTGRES_IMAGE, PYTHON_BASE_IMAGE, TRAINER_IMAGE, source_root

app = typer.Typer(
    help="Build the trainer image that every worker runs, and find a Postgres image.",
    no_args_is_help=True,
)


@app.command()
def build(
    base: Annotated[
        str,
        typer.Option(help="Base image; where it cannot be pulled, one is bootstrapped offline."),
    ] = PYTHON_BASE_IMAGE,
    source: Annotated[
        Path | None,
        path_option(help="hpo source tree to build from (default: this install's, or cwd)."),
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


@app.command()
def postgres(
    image: Annotated[
        str, typer.Option(envvar="HPO_POSTGRES_IMAGE", help="The Postgres image wanted.")
    ] = POSTGRES_IMAGE,
) -> None:
    """Print a Postgres image that is here: IMAGE if present or pullable, else the offline one.

    The offline image is built from postgres/ the first time. Only the name goes to stdout, for
    `POSTGRES_IMAGE=$(hpo image postgres) docker compose up`.
    """
    client = guard(engine.connect)

    def log(line: str) -> None:
        stderr.print(line, markup=False, highlight=False, overflow="ellipsis")

    name = guard(images.ensure_postgres_image, client, image, source_root(), log)
    stdout.print(name, markup=False, highlight=False)


def _no_source(root: Path | None) -> None:
    where = f"`{root}`" if root else "this install or the current folder"
    raise ConfigError(
        f"no hpo source tree (trainer_image/Dockerfile) in {where}: pass `--source` with a clone."
    )
