"""``hpo dashboard``: optuna-dashboard on the study database, for a browser."""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer
from trainer.storage import open_storage, where

from orchestrator.commands._storage import StorageOption, resolve_storage
from orchestrator.console import guard, stdout
from orchestrator.errors import ConfigError

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

    guard(check_can_listen, host, port)
    url = guard(resolve_storage, storage, start=False)
    rdb = guard(open_storage, url, APPLICATION)
    stdout.print(f"optuna-dashboard on http://{host}:{port}/dashboard/ ({where(url)})")
    try:
        run_server(rdb, host=host, port=port)
    except KeyboardInterrupt:
        pass
    finally:
        rdb.engine.dispose()


def check_can_listen(host: str, port: int) -> None:
    """Refuse a port in use (or an address not of this machine) before anything starts.

    The web server would otherwise fail with a traceback after printing its banner.

    Raises:
        ConfigError: ``host:port`` cannot be bound; the message gives the system's reason.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"`--host` {host!r} is not an address here: {e.strerror}.") from None
    family, kind, protocol, _, address = infos[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself does
        try:
            probe.bind(address)
        except OSError as e:
            other = "--port" if e.errno == errno.EADDRINUSE else "--host"
            raise ConfigError(
                f"cannot listen on {host}:{port}: {e.strerror}; choose another `{other}`."
            ) from None
