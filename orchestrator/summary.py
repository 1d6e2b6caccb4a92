"""The end of a launch: counts, the best trial, and the exit code that goes with them."""

from __future__ import annotations

import time

from orchestrator.console import stdout
from orchestrator.progress import Snapshot

__all__ = ["print_summary"]


def print_summary(
    final: Snapshot, failed_workers: list[int], max_failed: int, deadline: float | None = None
) -> int:
    """Print what the study reached; return 0 if a trial completed and no worker failed, else 1.

    ``deadline`` is the ``time.time()`` of the study's `--timeout`, if it has one.
    """
    counts = final.counts
    if counts.failed > max_failed:
        stdout.print(
            f"[red]stopped: {counts.failed} trials failed, more than --max-failed {max_failed}[/]"
            " (`hpo status` shows why)"
        )
    elif deadline is not None and counts.finished < final.budget and time.time() >= deadline:
        at = time.strftime("%H:%M:%S", time.localtime(deadline))
        stdout.print(f"[yellow]stopped: the study's --timeout passed at {at}[/]")
    stdout.print(
        f"\n[bold]{final.study}[/]: {counts.finished}/{final.budget} finished "
        f"({counts.complete} complete, {counts.pruned} pruned), {counts.failed} failed, "
        f"{counts.running} running",
        soft_wrap=True,
    )
    if final.last_failure is not None:
        number, reason = final.last_failure
        stdout.print(f"last failure: trial {number}: {reason}", markup=False, soft_wrap=True)
    if final.best is not None:
        stdout.print(
            f"best value {final.best.value:.4f} (trial {final.best.number}): {final.best.params}",
            soft_wrap=True,
        )
    elif final.pareto_size:
        stdout.print(
            f"Pareto front: {final.pareto_size} trials (`hpo best {final.study}` lists them)",
            markup=False,
            soft_wrap=True,
        )
    if failed_workers:
        names = ", ".join(
            f"w{k} ({final.failure_reasons.get(k, 'failed')})" for k in failed_workers
        )
        stdout.print(f"[red]workers that failed: {names}[/] (see their logs)")
    if final.restarts:
        restarted = ", ".join(
            f"w{k} {n}x (last: {final.failure_reasons.get(k, '?')})"
            for k, n in sorted(final.restarts.items())
        )
        stdout.print(f"[yellow]workers restarted: {restarted}[/]")
    return 0 if counts.complete > 0 and not failed_workers else 1
