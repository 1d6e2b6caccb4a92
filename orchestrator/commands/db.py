"""``hpo db up|down|url|status``: the managed Postgres that holds every study."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator import engine, images
from orchestrator.console import guard, stdout
from orchestrator.database import ManagedPostgres
from orchestrator.settings import POSTGRES_IMAGE, Instance, source_root

app = typer.Typer(
    help="The managed Postgres database that holds the studies.", no_args_is_help=True
)


def _managed() -> ManagedPostgres:
    return ManagedPostgres(guard(engine.connect), guard(Instance.from_env))


@app.command()
def up(
    image: Annotated[
        str,
        typer.Option(
            envvar="HPO_POSTGRES_IMAGE",
            help="Postgres image; where it cannot be pulled, one is built from postgres/ offline.",
        ),
    ] = POSTGRES_IMAGE,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port on 127.0.0.1 (default 5432, or a free one)."),
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for readiness.")] = 120,
) -> None:
    """Start the database (creating it on first use) and wait until it accepts connections."""
    managed = _managed()
    with stdout.status("starting Postgres") as status:
        if managed.status().state == "absent":
            image = guard(
                images.ensure_postgres_image,
                managed.client,
                image,
                source_root(),
                lambda line: status.update(f"[bold]Postgres image[/] {line[:100]}"),
            )
        state = guard(managed.up, image, port=port, timeout_s=timeout)
    ready = (
        f"Postgres ready at {managed.url()} (container {state.container}, volume {state.volume})"
    )
    stdout.print(ready, markup=False, soft_wrap=True)


@app.command()
def down(
    delete_data: Annotated[
        bool, typer.Option(help="Also delete the data volume and its password: every study goes.")
    ] = False,
) -> None:
    """Stop and remove the database container; its data volume stays unless --delete-data."""
    managed = _managed()
    guard(managed.down, delete_data=delete_data)
    kept = "deleted" if delete_data else f"kept in volume {managed.instance.postgres_volume}"
    stdout.print(f"Postgres stopped; data {kept}", soft_wrap=True)


@app.command()
def url(
    reveal: Annotated[bool, typer.Option(help="Print the password instead of ***.")] = False,
    network: Annotated[
        bool, typer.Option(help="The URL for containers on the hpo network, not for this host.")
    ] = False,
) -> None:
    """Print the storage URL of the managed database (password hidden unless --reveal)."""
    stdout.print(
        guard(_managed().url, from_network=network, reveal=reveal), markup=False, soft_wrap=True
    )


@app.command()
def status() -> None:
    """Show the database container's state, health, port and data volume."""
    state = guard(_managed().status)
    volume = "present" if state.volume_exists else "absent"
    stdout.print(
        f"container  {state.container}: {state.state}"
        + (f" ({state.health})" if state.health else "")
    )
    if state.port is not None:
        stdout.print(f"port       127.0.0.1:{state.port}")
    if state.image is not None:
        stdout.print(f"image      {state.image}")
    stdout.print(f"volume     {state.volume}: {volume}")
