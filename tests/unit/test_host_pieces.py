"""Pure host-side pieces of images and the managed database: no engine needed."""

from __future__ import annotations

import gc
import hashlib
import socket
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from docker.errors import APIError, ImageNotFound
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.credentials import load_or_create_password, redact_url
from orchestrator.database import _free_port
from orchestrator.errors import ConfigError
from orchestrator.images import ensure_wheelhouse, requirements
from orchestrator.images._base import DEFAULT_MIRROR, apt_mirror
from orchestrator.images._trainer import _remove_unused
from orchestrator.settings import Instance

REPO = Path(__file__).resolve().parents[2]


def test_password_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "hpo" / "hpo-postgres-password"
    first = load_or_create_password(path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_password(path) == first


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://hpo:s3cr%40t@127.0.0.1:5432/hpo",
            "postgresql+psycopg://hpo:***@127.0.0.1:5432/hpo",
        ),
        ("postgresql://hpo@db/hpo", "postgresql://hpo@db/hpo"),
    ],
)
def test_urls_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_instance_names_scope_every_object() -> None:
    instance = Instance("ci-1")
    assert (instance.postgres_container, instance.network, instance.postgres_volume) == (
        "ci-1-postgres",
        "ci-1-net",
        "ci-1-pgdata",
    )
    assert instance.labels == {"hpo.instance": "ci-1"}


@pytest.mark.parametrize("bad", ["", "Upper", "../x", "a;b", "x" * 41])
def test_bad_instance_names_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="HPO_INSTANCE"):
        Instance(bad)


def test_image_requirements_come_from_pyproject() -> None:
    wanted = requirements(REPO)
    assert "torch==2.13.0" in wanted
    assert any(r.startswith("psycopg") for r in wanted)
    assert any(r.startswith("setuptools") for r in wanted)


def test_wheelhouse_with_matching_stamp_is_reused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    digest = hashlib.sha256(("\n".join(requirements(tmp_path)) + "\n").encode()).hexdigest()
    (wheelhouse / ".requirements.sha256").write_text(digest)
    seen: list[str] = []
    assert ensure_wheelhouse(tmp_path, seen.append) == wheelhouse
    assert seen == ["wheelhouse up to date (0 wheels)"]


def test_apt_mirror_reads_deb822_and_skips_security(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
    )
    assert apt_mirror(tmp_path) == "http://mirror.example/debian"
    assert apt_mirror(tmp_path / "nowhere") == DEFAULT_MIRROR


def test_taken_port_gives_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert _free_port(port) != port


# docker-py leaves the socket of a failed unix connect open (docker/docker-py#3356, unmerged):
# collect it inside this test so the warning is this test's, and ignore only that one.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_unreachable_engine_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = CliRunner().invoke(app, ["db", "status"])
    exit_code, lines = result.exit_code, result.output.strip().splitlines()
    del result  # its exception chain holds the leaked socket
    gc.collect()
    assert exit_code == 2
    assert len(lines) == 1
    assert lines[0].startswith("error: the Docker engine is not reachable: start it")


def test_image_build_without_source_tree_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["image", "build", "--source", str(tmp_path)])
    assert result.exit_code == 2
    assert "no hpo source tree" in result.output


class _FakeImages:
    """``client.images`` as the engine answers: gone, in use, tagged still, or removed."""

    def __init__(self, answer: Exception | None, tags: tuple[str, ...]) -> None:
        self.answer = answer
        self.tags = list(tags)
        self.removed: list[str] = []

    def get(self, image: str) -> SimpleNamespace:
        if isinstance(self.answer, ImageNotFound):
            raise self.answer
        return SimpleNamespace(tags=self.tags)

    def remove(self, image: str) -> None:
        if self.answer is not None:
            raise self.answer
        self.removed.append(image)


@pytest.mark.parametrize(
    ("answer", "tags", "logged"),
    [
        (None, (), "removed the replaced image sha256:0123456789"),
        (APIError("conflict", explanation="image is being used by a container"), (), "kept"),
        (
            None,
            ("my-backup:1",),
            "kept the replaced image sha256:0123456789ab: still tagged my-backup:1",
        ),
        (ImageNotFound("gone"), (), None),
    ],
)
def test_a_replaced_trainer_image_is_removed_or_kept_when_in_use(
    answer: Exception | None, tags: tuple[str, ...], logged: str | None
) -> None:
    fake = _FakeImages(answer, tags)
    lines: list[str] = []
    _remove_unused(SimpleNamespace(images=fake), "sha256:0123456789abcdef", lines.append)  # type: ignore[arg-type]
    assert fake.removed == ([] if answer or tags else ["sha256:0123456789abcdef"])
    if logged is None:
        assert lines == []
    else:
        (line,) = lines
        assert line.startswith(logged)
