"""`hpo sync` refuses at once, in one line, what `wandb sync` would fail at or retry for minutes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

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
