"""`hpo report` of a finished study, rendered in headless Chromium as a reader would open it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pytest
from optuna.trial import TrialState

from tests.integration.conftest import HPO, Database, read_study

pytestmark = pytest.mark.integration
FIGURES = 6  # history, importances, parallel coordinates, slices, intermediate values, curves


def test_launch_writes_a_report_every_figure_renders_and_the_table_has_every_trial(
    database: Database, tmp_path: Path
) -> None:
    command = [HPO, "launch", "--backend", "local", "--study", "shown", "--workers", "2"]
    command += ["--trials", "5", "--runs-dir", str(tmp_path), "--tracking", "none"]
    command += ["--pruner", "none", "--seed", "2", "trainer.max_epochs=4"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    index = tmp_path / "shown" / "report" / "index.html"
    assert f"report: {index}" in result.stdout

    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: `make provision` installs it"
    rendered = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=20000",
            "--dump-dom",
            index.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    graphs = re.findall(
        r'<div id="figure-\d+" class="plotly-graph-div[^>]*>(.*?)</div>\s*<script',
        rendered,
        flags=re.S,
    )
    assert len(graphs) == FIGURES
    assert all('class="main-svg"' in graph for graph in graphs)  # plotly drew into each one
    trials = read_study(database, "shown").trials
    body = rendered.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr>") == len(trials) == 5
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert "python -m trainer.train experiment=digits_mlp" in rendered

    pngs = sorted(index.parent.glob("*.png"))
    assert len(pngs) == FIGURES
    for png in pngs:
        pixels = matplotlib.image.imread(png)
        assert pixels.std() > 0.01, f"{png.name} is blank"


def test_retrain_reproduces_the_best_trial(database: Database, tmp_path: Path) -> None:
    command = [HPO, "launch", "--backend", "local", "--study", "again", "--workers", "1"]
    command += ["--trials", "2", "--runs-dir", str(tmp_path), "--tracking", "none"]
    command += ["--no-report", "--pruner", "none", "trainer.max_epochs=3"]
    assert subprocess.run(command, capture_output=True, timeout=600, check=False).returncode == 0
    retrain = [HPO, "retrain", "again", "--runs-dir", str(tmp_path)]
    first = subprocess.run(retrain, capture_output=True, text=True, timeout=600, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    result = subprocess.run(retrain, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"val_acc (\d\.\d+) in the study, (\d\.\d+) now", result.stdout)
    assert found, result.stdout
    logged, now = float(found[1]), float(found[2])
    assert abs(logged - now) < 0.01  # same seed; only the thread count may differ
    assert re.search(r"test: test_acc 0\.\d+", result.stdout)
    chatter = ("GPU available", "Tip:", "weights_only", "`Trainer.fit` stopped", "not empty")
    assert not [line for line in chatter if line in result.stdout + result.stderr], result.stderr
    (checkpoint,) = (tmp_path / "again").glob("retrain-*/model.ckpt")
    assert checkpoint.stat().st_size > 0
