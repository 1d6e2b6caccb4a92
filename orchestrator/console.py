"""Where the ``hpo`` command writes, and the one place an ``HpoError`` becomes exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from orchestrator.errors import HpoError

__all__ = ["USAGE_ERROR", "guard", "stderr", "stdout"]

P = ParamSpec("P")
R = TypeVar("R")

USAGE_ERROR = 2

stdout = Console()
stderr = Console(stderr=True)


def guard(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``function``; an ``HpoError`` becomes one line on stderr and exit code 2."""
    try:
        return function(*args, **kwargs)
    except HpoError as e:
        first_line, *detail = str(e).splitlines()
        stderr.print(f"error: {first_line}", markup=False, highlight=False, soft_wrap=True)
        for line in detail:
            stderr.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=USAGE_ERROR) from None
