"""The compose stack's pieces that need no engine: its secret, its storage URL, its context."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from docker.errors import NotFound

from orchestrator.commands import _storage
from orchestrator.compose_context import compose_context
from orchestrator.errors import ConfigError
from orchestrator.stack_secret import ensure_password


def test_password_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "postgres-password"
    assert ensure_password(path) is True
    first = path.read_text()
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert ensure_password(path) is False
    assert path.read_text() == first


def test_password_file_completes_an_explicit_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cr:t@x\n")
    monkeypatch.setenv("HPO_STORAGE_PASSWORD_FILE", str(secret))
    url, worker_url = _storage.resolve_storage_pair(
        "postgresql+psycopg://hpo@db:5432/hpo", start=False
    )
    assert url == worker_url == "postgresql+psycopg://hpo:s3cr%3At%40x@db:5432/hpo"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_a_url_as_psql_writes_it_gets_hpos_driver(scheme: str) -> None:
    url, _ = _storage.resolve_storage_pair(f"{scheme}://hpo:pw@db:5432/hpo", start=False)
    assert url == "postgresql+psycopg://hpo:pw@db:5432/hpo"


def test_missing_password_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_STORAGE_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="HPO_STORAGE_PASSWORD_FILE: cannot read"):
        _storage.resolve_storage_pair("postgresql+psycopg://hpo@db/hpo", start=False)


class _Containers:
    def __init__(self, found: Any) -> None:
        self.found = found

    def get(self, name: str) -> Any:
        if self.found is None:
            raise NotFound("no such container")
        return self.found


def _client(found: Any) -> Any:
    return SimpleNamespace(containers=_Containers(found))


def test_compose_context_gives_the_projects_network_and_labels(tmp_path: Path) -> None:
    marker = tmp_path / ".dockerenv"
    marker.touch()
    me = SimpleNamespace(
        labels={
            "com.docker.compose.project": "hpo",
            "com.docker.compose.service": "orchestrator",
            "com.docker.compose.project.working_dir": "/srv/hpo",
        },
        attrs={"NetworkSettings": {"Networks": {"hpo_default": {}}}},
    )
    context = compose_context(_client(me), marker)
    assert context is not None
    assert context.network == "hpo_default"
    assert context.labels == {
        "com.docker.compose.project": "hpo",
        "com.docker.compose.project.working_dir": "/srv/hpo",
        "com.docker.compose.service": "worker",
        "com.docker.compose.oneoff": "False",
    }


def test_no_compose_context_outside_a_compose_container(tmp_path: Path) -> None:
    marker = tmp_path / ".dockerenv"
    assert compose_context(_client(None), marker) is None  # not in a container at all
    marker.touch()
    assert compose_context(_client(None), marker) is None  # a container the engine does not know
    plain = SimpleNamespace(labels={}, attrs={"NetworkSettings": {"Networks": {"bridge": {}}}})
    assert compose_context(_client(plain), marker) is None  # a container outside compose


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://hpo:pw@127.0.0.1:5432/hpo",
        "postgresql://hpo:pw@localhost/hpo",
        "postgres://hpo@db.localhost/hpo",
        "postgresql+psycopg://hpo:pw@[::1]:5432/hpo",
        "postgresql+psycopg://hpo:pw@0.0.0.0/hpo",
        "postgresql+psycopg://hpo@/hpo",
        "postgresql+psycopg://hpo@/hpo?host=/var/run/postgresql",
        "postgresql+psycopg://hpo@/hpo?host=127.0.0.2",
    ],
)
def test_a_storage_only_this_host_reaches_is_refused_for_containers(url: str) -> None:
    with pytest.raises(ConfigError, match=r"`--storage` names .* `--backend local`"):
        _storage.check_reachable_from_containers(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://hpo:pw@db:5432/hpo",
        "postgresql://hpo@10.0.0.7/hpo",
        "postgresql+psycopg://hpo@/hpo?host=db.example",
        "sqlite:///study.db",  # not Postgres: refused by the storage check, as such
        "not a url",
    ],
)
def test_a_storage_containers_can_reach_passes(url: str) -> None:
    _storage.check_reachable_from_containers(url)
