"""A launch rebuilds hpo's trainer image when it is older than the source tree it runs from."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from docker.errors import ImageNotFound

from orchestrator import images
from orchestrator.commands import _backend
from orchestrator.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for name in ("pyproject.toml", "trainer_image/Dockerfile", "trainer_image/trainer/fit.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    return root


def test_the_digest_follows_sources_not_bytecode_or_built_extensions(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    first = images.source_digest(root)
    (root / "trainer_image" / "trainer" / "__pycache__").mkdir()
    (root / "trainer_image" / "trainer" / "__pycache__" / "fit.cpython-311.pyc").write_bytes(b"x")
    (root / "trainer_image" / "trainer" / "_entropy.cpython-311-x86_64-linux-gnu.so").write_bytes(
        b"x"
    )
    assert images.source_digest(root) == first
    with (root / "trainer_image" / "trainer" / "fit.py").open("a") as f:
        f.write("\n# a change\n")
    assert images.source_digest(root) != first


class _Images:
    def __init__(self, labels: dict[str, dict[str, str]]) -> None:
        self.labels = labels

    def get(self, name: str) -> Any:
        if name not in self.labels:
            raise ImageNotFound(name)
        return SimpleNamespace(labels=self.labels[name])


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The source tree is a small copy; builds are recorded, not run."""
    root = _tree(tmp_path)
    monkeypatch.setattr(_backend, "source_root", lambda: root)
    calls: list[str] = []
    monkeypatch.setattr(images, "build_trainer_image", lambda *a, **k: calls.append("built"))
    return calls


def _ensure(image: str, labels: dict[str, dict[str, str]]) -> None:
    _backend._ensure_image(SimpleNamespace(images=_Images(labels)), image)  # type: ignore[arg-type]


def _current(tmp_path: Path) -> dict[str, str]:
    return {images.SOURCE_LABEL: images.source_digest(tmp_path / "src")}


def test_the_trainer_image_is_built_when_missing_or_stale_and_kept_when_current(
    built: list[str], tmp_path: Path
) -> None:
    _ensure("hpo-trainer:latest", {"hpo-trainer:latest": _current(tmp_path)})
    assert built == []
    _ensure("hpo-trainer:latest", {"hpo-trainer:latest": {images.SOURCE_LABEL: "older"}})
    assert built == ["built"]
    _ensure("hpo-trainer:latest", {"hpo-trainer:latest": {}})  # built before images had it
    _ensure("hpo-trainer:latest", {})
    assert built == ["built"] * 3


def test_a_users_image_is_never_built_and_a_stale_one_is_named(
    built: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ensure("mine:1", {"mine:1": _current(tmp_path)})
    assert capsys.readouterr().err == ""
    _ensure("mine:1", {"mine:1": {images.SOURCE_LABEL: "older"}})
    assert "warning: `mine:1` was built FROM an older hpo-trainer" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="no image `mine:2`: build it first"):
        _ensure("mine:2", {})
    assert built == []
