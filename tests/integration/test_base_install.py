"""The host-side install (no extras) works without torch: a real venv, a real ``pip install``."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base-venv")
    venv.create(root, with_pip=True)
    # Build from a copy of the tree so no build/ or egg-info lands in the checkout.
    source = tmp_path_factory.mktemp("src")
    subprocess.run(
        f"git -C {REPO} ls-files -z --cached --others --exclude-standard"
        f" | xargs -0 cp --parents -t {source}",
        shell=True,
        check=True,
        cwd=REPO,
    )
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q", str(source)]
    subprocess.run(pip, check=True, capture_output=True, text=True, timeout=600)
    return root


def _python(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    command = [str(root / "bin" / "python"), "-c", code]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_orchestrator_imports_without_torch(base_venv: Path) -> None:
    result = _python(base_venv, "import sys, orchestrator.cli; print('torch' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert _python(base_venv, "import torch").returncode != 0


def test_hpo_command_and_packaged_configs(base_venv: Path) -> None:
    hpo = str(base_venv / "bin" / "hpo")
    assert subprocess.run([hpo, "--help"], capture_output=True, check=False).returncode == 0
    listed = subprocess.run([hpo, "experiments"], capture_output=True, text=True, check=True)
    assert "digits_mlp" in listed.stdout.split()
    # Nested groups (model/optimizer) must be packaged too, not only the top-level YAML.
    shown = subprocess.run(
        [hpo, "config", "digits_mlp", "model/optimizer=sgd"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "torch.optim.SGD" in shown.stdout


def test_a_local_launch_without_the_trainer_extra_says_what_to_install(
    base_venv: Path, tmp_path: Path
) -> None:
    hpo = str(base_venv / "bin" / "hpo")
    command = [hpo, "launch", "--backend", "local", "--trials", "1", "--runs-dir", str(tmp_path)]
    # An unreachable database proves the check comes before it is touched.
    env = {"HPO_STORAGE": "postgresql+psycopg://hpo:x@127.0.0.1:9/hpo", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(
        "error: `--backend local` runs the workers here and needs the trainer extra "
        "(torch, lightning missing)"
    )
