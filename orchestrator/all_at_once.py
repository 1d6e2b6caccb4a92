"""Act on every worker at once: stopping N of them one by one takes N stop timeouts.

``docker compose down`` allows the orchestrator 60 s; ``hpo stop`` should not take 30 s per
worker deaf to SIGTERM. One thread per item (up to ``MAX_THREADS``): each call mostly waits on
the engine or on a process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["MAX_THREADS", "each_at_once"]

MAX_THREADS = 32
T = TypeVar("T")
R = TypeVar("R")


def each_at_once(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``function`` of every item, called concurrently; the results in the items' order.

    Every call ends before this returns or raises: one item's error does not cut the others
    short, and the first error (in the items' order) is raised once all are done.
    """
    chosen = list(items)
    with ThreadPoolExecutor(max_workers=max(1, min(len(chosen), MAX_THREADS))) as pool:
        futures = [pool.submit(function, item) for item in chosen]
    return [future.result() for future in futures]
