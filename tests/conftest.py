"""Shared fixtures: configs composed through the same API a trial uses, shrunk for speed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import wandb
from omegaconf import DictConfig, open_dict
from trainer import experiment

from tests.wandb_server import KEY, WandbStandIn, wandb_stand_in

ComposeFn = Callable[..., DictConfig]
WANDB_SETTINGS = ("WANDB_MODE", "WANDB_BASE_URL", "WANDB_INIT_TIMEOUT", "WANDB_FINISH_TIMEOUT")


@pytest.fixture(autouse=True)
def no_wandb_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """W&B stays offline unless a test gives it a key: none from this machine's environment or
    its ~/.netrc (`wandb login`), which hpo would otherwise use (a NETRC file that is not there
    outranks ~/.netrc), and none of W&B's settings that hpo reads or passes to workers. W&B's
    crash reports (to its Sentry, on by default) are off: tests talk to 127.0.0.1 and their own
    containers only."""
    for name in ("WANDB_API_KEY", *WANDB_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")


@pytest.fixture
def fresh_wandb() -> Iterator[None]:
    """W&B set up anew from this test's environment, and again after it.

    W&B reads its server's URL when a process first uses it and keeps it: a test that points it
    elsewhere would otherwise reach the server of an earlier test in the same process.
    """
    wandb.teardown()
    yield
    wandb.teardown()


@pytest.fixture
def wandb_online(fresh_wandb: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[WandbStandIn]:
    """W&B with a key (``KEY``), online at the stand-in for its server on 127.0.0.1."""
    with wandb_stand_in() as server:
        monkeypatch.setenv("WANDB_API_KEY", KEY)
        monkeypatch.setenv("WANDB_BASE_URL", server.url)
        yield server


@pytest.fixture
def compose_in(tmp_path: Path) -> ComposeFn:
    """Compose an experiment whose run folder is this test's tmp_path."""

    def _compose(name: str | None = "digits_mlp", overrides: tuple[str, ...] = ()) -> DictConfig:
        cfg = experiment.compose(name, [f"paths.output_dir={tmp_path}", *overrides])
        with open_dict(cfg):
            cfg.threads = 1
        return cfg

    return _compose
