"""`make up`: which knobs reach `docker compose up`, run against stand-ins for docker and hpo.

Compose ranks the environment above `.env`, so whatever `make up` exports wins over a user's
`.env`; these tests run the real recipe with a `docker` that records what it was given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECORDED = ("HPO_WORKERS", "HPO_TRIALS", "HPO_EXPERIMENT", "HPO_ARGS", "POSTGRES_IMAGE")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _stand_ins(bin_dir: Path, record: Path, orchestrator: tuple[str, str]) -> None:
    """A `docker` that writes its compose environment to ``record``; an `hpo` naming an image.

    ``orchestrator`` is what its `compose logs` and `compose ps` say of the orchestrator.
    """
    bin_dir.mkdir()
    lines = "\n".join(f'echo "{name}=${{{name}-<unset>}}" >> {record}' for name in RECORDED)
    logs, state = orchestrator
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = port ]; then echo 127.0.0.1:8093; exit 0; fi\n'
        f"if [ \"$2\" = logs ]; then printf '{logs}'; exit 0; fi\n"
        f'if [ "$2" = ps ]; then echo "{state}"; exit 0; fi\n'
        f'echo "args=$*" >> {record}\n{lines}\n'
    )
    hpo = bin_dir / "hpo"
    hpo.write_text('#!/bin/sh\n[ "$*" = "image postgres" ] && echo postgres-built-here:15\n')
    for tool in (docker, hpo):
        tool.chmod(0o755)


ACCEPTED = ("\\033[2Kstudy s: 2 docker workers, budget 12\\n", "running 0")


def _make_up(
    folder: Path, *make_args: str, orchestrator: tuple[str, str] = ACCEPTED
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """What `docker compose up` was given by ``make up make_args``, and how make ended."""
    bin_dir, record = folder / "fake-bin", folder / "docker-calls"
    _stand_ins(bin_dir, record, orchestrator)
    env = {k: v for k, v in os.environ.items() if k not in RECORDED}
    env = {**env, "PATH": f"{bin_dir}:{env['PATH']}"}
    for name in ("WORKERS", "TRIALS", "EXPERIMENT", "ARGS"):
        env.pop(name, None)
    done = subprocess.run(
        [
            "make",
            "-s",
            "-f",
            str(REPO / "Makefile"),
            "-o",
            "image",
            "up",
            f"BIN={bin_dir}",
            *make_args,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    given = dict(line.split("=", 1) for line in record.read_text().splitlines())
    return given, done


def test_dot_env_knobs_are_not_overridden_by_make_defaults(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HPO_WORKERS=4\nPOSTGRES_IMAGE=postgres:16-alpine\n")
    given, done = _make_up(tmp_path)
    assert done.returncode == 0, done.stderr
    assert given["args"] == "compose up -d"
    for name in RECORDED:  # all left to compose: .env, then compose.yaml's defaults
        assert given[name] == "<unset>", name
    assert "dashboard: http://127.0.0.1:8093/dashboard/" in done.stdout


def test_knobs_given_to_make_reach_compose(tmp_path: Path) -> None:
    given, done = _make_up(tmp_path, "WORKERS=3", "ARGS=trainer.max_epochs=30 --cpus-per-worker 1")
    assert done.returncode == 0, done.stderr
    assert given["HPO_WORKERS"] == "3"
    assert given["HPO_ARGS"] == "trainer.max_epochs=30 --cpus-per-worker 1"
    assert given["HPO_TRIALS"] == "<unset>"
    assert given["POSTGRES_IMAGE"] == "postgres-built-here:15"  # nothing named one: hpo's


def test_a_study_the_orchestrator_refuses_fails_make_up_with_its_reason(tmp_path: Path) -> None:
    refused = (
        "\\033[2Kerror: unknown experiment `nosuch`; choose one of: digits_mlp.\\n",
        "exited 2",
    )
    _, done = _make_up(tmp_path, "EXPERIMENT=nosuch", orchestrator=refused)
    assert done.returncode != 0
    assert "error: unknown experiment `nosuch`; choose one of: digits_mlp." in done.stderr
    assert "\033" not in done.stderr
    assert "the orchestrator refused its study (exit 2)" in done.stderr
    assert "dashboard:" not in done.stdout


def test_a_verbatim_copy_of_the_example_env_keeps_a_postgres_image_that_is_here(
    tmp_path: Path,
) -> None:
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    given, done = _make_up(tmp_path)
    assert done.returncode == 0, done.stderr
    assert given["POSTGRES_IMAGE"] == "postgres-built-here:15"
