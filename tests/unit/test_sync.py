"""`hpo sync` refuses at once, in one line, what `wandb sync` would fail at or retry for minutes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from optuna.trial import TrialState
from trainer.wandb_runs import run_id
from typer.testing import CliRunner

from orchestrator import offline_runs
from orchestrator.cli import app
from orchestrator.commands import tracking


def _sync(runs: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["sync", "s", "--runs-dir", str(runs)])
    return result.exit_code, " ".join(result.output.split())


def test_sync_needs_offline_runs_a_key_and_a_reachable_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    code, said = _sync(tmp_path)
    assert code == 2
    assert f"no offline W&B runs under {tmp_path / 's' / 'wandb'}" in said

    (tmp_path / "s" / "wandb" / "offline-run-20261203_000000-abc").mkdir(parents=True)
    code, said = _sync(tmp_path)
    assert code == 2
    assert "no W&B key: set WANDB_API_KEY (or run `wandb login`) first." in said

    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    code, said = _sync(tmp_path)
    assert code == 2
    assert "cannot reach W&B at http://127.0.0.1:9 (Connection refused)" in said
    assert "k" * 40 not in said


def test_behind_a_proxy_the_way_to_wandb_is_left_to_wandb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:3128")
    tracking._check_reachable("http://127.0.0.1:9")  # no direct connection tried: no refusal


HEADER = b":W&B\xe1\xbe\x00"  # what a run file holds before W&B writes any record
UNREADABLE = b"not a record"


def _run(
    runs: Path, study: str, key: int | str, records: bytes = b"", synced: bool = False
) -> Path:
    """An offline run folder of ``study``: its file with ``records`` after the header."""
    ident = run_id(study, key)
    folder = runs / study / "wandb" / f"offline-run-20261204_0000{len(str(key))}0-{ident}"
    folder.mkdir(parents=True)
    (folder / f"run-{ident}.wandb").write_bytes(HEADER + records)
    if synced:
        (folder / f"run-{ident}.wandb.synced").touch()
    return folder


class FakeWandbSync:
    """`wandb sync` as wandb 0.31 behaves: it marks what it uploaded, unless one run given with
    the others cannot be read; then it uploads none of them, and still exits 0."""

    def __init__(self) -> None:
        self.calls: list[list[Path]] = []

    def __call__(self, folders: Sequence[Path]) -> int:
        self.calls.append(list(folders))
        files = [next(folder.glob("*.wandb")) for folder in folders]
        if all(UNREADABLE not in file.read_bytes() for file in files):
            for file in files:
                file.with_name(file.name + ".synced").touch()
        return 0


def test_one_unreadable_run_does_not_hold_back_the_others(tmp_path: Path) -> None:
    before = _run(tmp_path, "s", 0, b"records", synced=True)
    killed = _run(tmp_path, "s", 1)  # its worker was killed before W&B wrote a record
    good = [_run(tmp_path, "s", 2, b"records"), _run(tmp_path, "s", "study", b"records")]
    broken = _run(tmp_path, "s", 3, UNREADABLE)
    still_running = _run(tmp_path, "s", 4, b"records so far")
    wandb_sync = FakeWandbSync()

    outcome = offline_runs.sync_runs(
        offline_runs.find_offline_runs(tmp_path, "s"), wandb_sync, {run_id("s", 4)}
    )

    assert sorted(run.folder for run in outcome.uploaded) == sorted(good)
    assert [run.folder for run in outcome.before] == [before]
    assert [run.folder for run in outcome.running] == [still_running]
    assert [run.folder for run in outcome.empty] == [killed]
    assert [run.folder for run in outcome.unread] == [broken]
    batch = sorted([*good, broken])
    assert wandb_sync.calls == [batch, *([folder] for folder in batch)]
    assert outcome.exit_code == 0


def test_sync_says_what_it_uploaded_and_names_the_trials_it_could_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(tracking, "_check_reachable", lambda url: None)
    monkeypatch.setattr(tracking, "resolve_storage", lambda storage, start: "postgresql://db")
    done, running, killed = TrialState.COMPLETE, TrialState.RUNNING, TrialState.FAIL
    states = {0: done, 1: done, 2: TrialState.PRUNED, 4: running, 7: killed}
    monkeypatch.setattr(tracking, "_trial_states", lambda url, name: states)
    _run(tmp_path, "s", 0, b"records", synced=True)
    _run(tmp_path, "s", 1, b"records")
    _run(tmp_path, "s", 7)
    broken = _run(tmp_path, "s", "study", UNREADABLE)
    _run(tmp_path, "s", 2, b"records")
    _run(tmp_path, "s", 4, b"records so far")
    monkeypatch.setattr(tracking, "_wandb_sync", FakeWandbSync())

    code, said = _sync(tmp_path)

    assert code == 1  # the study run could not be read
    assert "uploaded 2 W&B run(s) of s to https://api.wandb.ai; 1 uploaded before" in said
    assert "warning: 1 W&B run(s) (trial 4) left for a later sync: their trials still run" in said
    assert "warning: 1 W&B run(s) (trial 7) not uploaded: no records." in said
    assert "a worker killed sooner leaves none" in said
    assert "warning: 1 W&B run(s) (the study run) not uploaded: see W&B's errors above." in said

    broken.joinpath(f"run-{run_id('s', 'study')}.wandb").write_bytes(HEADER + b"records")
    states[4] = done
    code, said = _sync(tmp_path)
    assert code == 0
    assert "uploaded 2 W&B run(s) of s to https://api.wandb.ai; 3 uploaded before" in said
    assert "later sync" not in said


def test_a_second_sync_of_an_uploaded_study_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    _run(tmp_path, "s", 0, b"records", synced=True)
    _run(tmp_path, "s", "study", b"records", synced=True)
    monkeypatch.setattr(tracking, "_wandb_sync", None)  # never called: no W&B server either

    code, said = _sync(tmp_path)

    assert code == 0
    assert "all 2 W&B run(s) of s were uploaded before: nothing to do" in said
