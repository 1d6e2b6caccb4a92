"""Unit tests need no services: a test that reaches for the Docker engine fails at once."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_docker_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the Docker SDK at a socket that is not there.

    Without this, a CLI test that takes the default docker backend would quietly use this
    machine's engine, and even build the trainer image from it (a unit test did, in CI).
    """
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
