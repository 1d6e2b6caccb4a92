"""``hpo dashboard``: optuna-dashboard on the study database, for a browser."""

from __future__ import annotations

from typing import Annotated

import typer
from trainer.storage import open_storage, where

from orchestrator.commands._storage import StorageOption, resolve_storage
from orchestrator.console import guard, stdout

APPLICATION = "dashboard"  # names the dashboard's connections in pg_stat_activity


def dashboard(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; 0.0.0.0 only inside a container or behind auth."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    storage: StorageOption = None,
) -> None:
    """Serve optuna-dashboard for every study in the database, until Ctrl-C."""
    from optuna_dashboard import run_server  # only this command needs the web stack

    url = guard(resolve_storage, storage, start=False)
    rdb = guard(open_storage, url, APPLICATION)
    stdout.print(f"optuna-dashboard on http://{host}:{port}/dashboard/ ({where(url)})")
    try:
        run_server(rdb, host=host, port=port)
    except KeyboardInterrupt:
        pass
    finally:
        rdb.engine.dispose()
