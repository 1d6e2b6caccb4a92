"""A study's offline W&B runs on disk, and uploading them with ``wandb sync`` without losing any.

``wandb sync`` marks each run it uploaded with a ``<run>.wandb.synced`` file beside the run's
records and skips such runs later. Two things about it shape ``sync_runs``, both seen with wandb
0.31: W&B writes an offline run's records only as the run ends (or per 32 KiB), so the run of a
trial still running, or of one whose worker was killed, holds nothing but the file's header; and
a single run it cannot read makes ``wandb sync`` upload none of the runs given with it, while it
still exits 0. So runs without records are left out (and named), and when a batch leaves more
than one run unmarked, those are retried one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trainer.wandb_runs import run_id, wandb_dir

__all__ = ["OfflineRun", "SyncOutcome", "find_offline_runs", "sync_runs", "trial_numbers"]

SYNCED_MARK = ".wandb.synced"
# A run file starts with a 7-byte header (":W&B", magic, version); its records follow.
RUN_FILE_HEADER_BYTES = 7
# Trial numbers tried when naming runs (a run id is a hash of study and number): far more than
# a study has, for ~0.1 s at most.
MAX_TRIAL_NUMBER = 100_000

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
    empty: list[OfflineRun]  # no records written yet: not tried
    unread: list[OfflineRun]  # tried, and still not uploaded
    exit_code: int  # the first non-zero exit code of `wandb sync`, else 0


def find_offline_runs(runs_dir: Path, study: str) -> list[OfflineRun]:
    """The study's offline runs, oldest first (a folder name starts with its run's start)."""
    folders = (wandb_dir(runs_dir, study) / "wandb").glob("offline-run-*")
    return [OfflineRun(folder) for folder in sorted(folders) if folder.is_dir()]


def sync_runs(runs: Sequence[OfflineRun], wandb_sync: WandbSync) -> SyncOutcome:
    """Upload every run not uploaded before that has records, each once."""
    before = [run for run in runs if run.synced]
    pending = [run for run in runs if not run.synced]
    empty = [run for run in pending if not run.written]
    tried = [run for run in pending if run.written]
    codes = [wandb_sync([run.folder for run in tried])] if tried else []
    left = [run for run in tried if not run.synced]
    if len(left) > 1:  # one run it could not read may have held back the others
        codes += [wandb_sync([run.folder]) for run in left]
    uploaded = [run for run in tried if run.synced]
    unread = [run for run in tried if not run.synced]
    exit_code = next((code for code in codes if code != 0), 0)
    return SyncOutcome(uploaded, before, empty, unread, exit_code)


def trial_numbers(study: str, runs: Iterable[OfflineRun]) -> dict[str, int | str]:
    """Which trial (a number) or ``"study"`` each run belongs to, for the runs found."""
    wanted = {run.id for run in runs}
    names: dict[str, int | str] = {}
    if run_id(study, "study") in wanted:
        names[run_id(study, "study")] = "study"
    for number in range(MAX_TRIAL_NUMBER):
        if len(names) == len(wanted):
            break
        if (key := run_id(study, number)) in wanted:
            names[key] = number
    return names
