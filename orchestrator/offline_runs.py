"""A study's offline W&B runs on disk, and uploading them with ``wandb sync`` without losing any.

``wandb sync`` uploads what a run's file holds, marks the run with a ``<run>.wandb.synced`` file
and skips it from then on. Three things about it shape ``sync_runs``, all seen with wandb 0.31:
the run of a trial still running would be uploaded as far as W&B has written it, and never
again; W&B writes a run's records every ``wandb_runs.FLUSH_INTERVAL_S`` and as it ends, so the
run of a trial killed sooner holds nothing but the file's header; and a single run that it
cannot read makes ``wandb sync`` upload none of the runs given with it, while it still exits 0.
So the runs of running trials wait for a later sync, runs without records are left out, and
when a batch leaves more than one run unmarked, those are retried one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from trainer.wandb_runs import run_id, wandb_dir

__all__ = ["OfflineRun", "SyncOutcome", "find_offline_runs", "run_names", "sync_runs"]

SYNCED_MARK = ".wandb.synced"
# A run file starts with a 7-byte header (":W&B", magic, version); its records follow.
RUN_FILE_HEADER_BYTES = 7
WandbSync = Callable[[Sequence[Path]], int]  # `wandb sync FOLDER...`; returns its exit code


@dataclass(frozen=True)
class OfflineRun:
    """One ``offline-run-<time>-<id>`` folder."""

    folder: Path

    @property
    def id(self) -> str:
        """The W&B run id, the folder name's last part."""
        return self.folder.name.rsplit("-", 1)[-1]

    @property
    def synced(self) -> bool:
        """Whether ``wandb sync`` has uploaded it (then it skips it)."""
        return any(path.name.endswith(SYNCED_MARK) for path in self.folder.iterdir())

    @property
    def written(self) -> bool:
        """Whether W&B has written any of its records yet."""
        files = self.folder.glob("*.wandb")
        return any(path.stat().st_size > RUN_FILE_HEADER_BYTES for path in files)


@dataclass(frozen=True)
class SyncOutcome:
    """What became of each run given to ``sync_runs``."""

    uploaded: list[OfflineRun]
    before: list[OfflineRun]  # uploaded by an earlier sync: skipped
    running: list[OfflineRun]  # of a trial still running: left for a later sync
    empty: list[OfflineRun]  # no records written: not tried
    unread: list[OfflineRun]  # tried, and still not uploaded
    exit_code: int  # the first non-zero exit code of `wandb sync`, else 0


def find_offline_runs(runs_dir: Path, study: str) -> list[OfflineRun]:
    """The study's offline runs, oldest first (a folder name starts with its run's start)."""
    folders = (wandb_dir(runs_dir, study) / "wandb").glob("offline-run-*")
    return [OfflineRun(folder) for folder in sorted(folders) if folder.is_dir()]


def sync_runs(
    runs: Sequence[OfflineRun], wandb_sync: WandbSync, running: Collection[str] = ()
) -> SyncOutcome:
    """Upload each run not uploaded before, once its trial has ended, if it holds records.

    Args:
        runs: The study's offline runs.
        wandb_sync: Runs ``wandb sync`` on folders.
        running: Ids of the runs whose trials still run.
    """
    before = [run for run in runs if run.synced]
    pending = [run for run in runs if not run.synced]
    waiting = [run for run in pending if run.id in running]
    empty = [run for run in pending if run.id not in running and not run.written]
    tried = [run for run in pending if run.id not in running and run.written]
    codes = [wandb_sync([run.folder for run in tried])] if tried else []
    left = [run for run in tried if not run.synced]
    if len(left) > 1:  # one run it could not read may have held back the others
        codes += [wandb_sync([run.folder]) for run in left]
    uploaded = [run for run in tried if run.synced]
    unread = [run for run in tried if not run.synced]
    exit_code = next((code for code in codes if code != 0), 0)
    return SyncOutcome(uploaded, before, waiting, empty, unread, exit_code)


def run_names(study: str, trial_numbers: Sequence[int]) -> dict[str, str]:
    """What to call each run id of the study: ``trial 3``, ``the study run``."""
    names = {run_id(study, number): f"trial {number}" for number in trial_numbers}
    return names | {run_id(study, "study"): "the study run"}
