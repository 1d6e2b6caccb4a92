"""Folders are checked before work that ends by writing, and the check leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.folders import check_writable_folder


def test_a_folder_that_can_be_made_passes_and_is_not_left_behind(tmp_path: Path) -> None:
    check_writable_folder(tmp_path / "runs" / "study", "--runs-dir")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_and_its_files_are_kept(tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("x")
    check_writable_folder(tmp_path, "--out")
    assert (tmp_path / "kept.txt").read_text() == "x"


def test_a_folder_under_a_file_is_one_line_naming_the_option(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError) as info:
        check_writable_folder(tmp_path / "file" / "runs", "--runs-dir")
    assert str(info.value) == (
        f"cannot write in `{tmp_path / 'file' / 'runs'}` (Not a directory); "
        "pass another `--runs-dir`."
    )
