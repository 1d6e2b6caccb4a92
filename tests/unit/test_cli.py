"""The ``hpo`` command's surface: help, listing, and exit code 2 with one line for bad input."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from orchestrator.cli import app

runner = CliRunner()


def test_help_lists_commands_and_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "experiments" in result.output
    assert "Exit codes" in result.output


def test_experiments_lists_digits() -> None:
    result = runner.invoke(app, ["experiments"])
    assert result.exit_code == 0
    assert "digits_mlp" in result.output.split()


def test_config_prints_the_composed_yaml() -> None:
    result = runner.invoke(app, ["config", "digits_mlp", "model.depth=3"])
    assert result.exit_code == 0
    assert "depth: 3" in result.output


def test_bad_experiment_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["config", "nope"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: unknown experiment `nope`; choose one of: digits_mlp, entropy."
    ]


def test_orchestrator_does_not_import_torch() -> None:
    code = "import sys, orchestrator.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
