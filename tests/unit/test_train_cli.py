"""``python -m trainer.train`` rejects bad input with one line and exit code 2, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _train(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "trainer.train", *args]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["experiment=nope"], "unknown experiment `nope`; choose one of: digits_mlp"),
        (["experiment=digits_mlp", "model.widht=3"], "unknown config key `model.widht`"),
        (["experiment=digits_mlp", "data.batch_size=big"], "`data.batch_size` expects int"),
        (["experiment=digits_mlp", "model.activation=swish"], "`model.activation` must be one of"),
        (["experiment=digits_mlp", "data.val_fraction=0.9"], "`data.val_fraction`"),
        (["model._target_=mypkg.Net"], "`model`: cannot import the `_target_` `mypkg.Net`"),
        (["trainer.devices=0"], "`trainer`: `Trainer(devices=0)` value is not a valid input"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], expected: str, tmp_path: Path) -> None:
    result = _train(*args, "trainer.max_epochs=1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert expected in errors[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_hydras_own_overrides_reach_hydra(tmp_path: Path) -> None:
    run_dir = tmp_path / "elsewhere"
    result = _train("trainer.max_epochs=1", "threads=1", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (run_dir / "train.log").is_file()
    assert (run_dir / "csv" / "metrics.csv").is_file()  # the curves beside the run's log


def test_a_multirun_sweep_runs_each_job_in_its_own_folder(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ("-m", "model.depth=1,2", "threads=1", f"hydra.sweep.dir={sweep}")
    result = _train(*args, "trainer.max_epochs=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = [json.loads(line) for line in result.stdout.splitlines()]  # stdout: JSON lines only
    assert [m["epochs"] for m in metrics] == [1.0, 1.0]
    for job in ("0", "1"):
        assert (sweep / job / "train.log").is_file()
        assert (sweep / job / "csv" / "metrics.csv").is_file()


def test_a_multirun_checks_its_overrides_first(tmp_path: Path) -> None:
    result = _train("-m", "model.widht=1,2", "trainer.max_epochs=1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown config key `model.widht`")


def test_hydras_job_logging_can_be_switched_off(tmp_path: Path) -> None:
    """hpo's own job logging (stderr) is a whole option, so another one replaces it cleanly."""
    result = _train("trainer.max_epochs=1", "threads=1", "hydra/job_logging=disabled", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "val_acc" in json.loads(result.stdout)
    assert not list(tmp_path.rglob("train.log"))


@pytest.mark.parametrize("wandb_loaded", [False, True])
def test_worker_exit_flushes_its_output_and_keeps_the_code(
    wandb_loaded: bool, tmp_path: Path
) -> None:
    """``trainer.worker`` leaves through ``exit_now`` (no interpreter teardown): what it
    printed and its exit code must still come out, with W&B's service closed first."""
    code = (
        ("import wandb\n" if wandb_loaded else "")
        + "import runpy, sys\n"
        + "sys.argv = ['trainer.worker', '--study', 's']\n"
        + "runpy.run_module('trainer.worker', run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HPO_STORAGE"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "no storage URL: pass --storage-file or set HPO_STORAGE" in result.stderr
