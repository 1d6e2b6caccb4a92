"""The report's figures: no empty charts or Optuna noise, and axes that name the metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
import pytest
from optuna.trial import TrialState

from orchestrator.report._figures import CURVES, INTERMEDIATE, figures
from orchestrator.report._png import _PLOTS, _curves, write_pngs
from tests.fronts import tell_values

METRIC = ("val_acc",)


@pytest.fixture
def optuna_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Optuna's log records (its logger does not propagate by default)."""
    optuna.logging.enable_propagation()
    with caplog.at_level(logging.WARNING, logger="optuna"):
        yield caplog
    optuna.logging.disable_propagation()


def _failed_study() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for _ in range(2):
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
        study.tell(trial, state=TrialState.FAIL)
    return study


def test_a_study_without_complete_trials_draws_no_empty_charts_and_logs_nothing(
    tmp_path: Path, optuna_logs: pytest.LogCaptureFixture
) -> None:
    study = _failed_study()
    stale = tmp_path / "optimization-history.png"  # from a report when trials had completed
    stale.write_bytes(b"png")

    drawn = figures(study, [], tmp_path, METRIC)
    written = write_pngs(study, list(drawn), [], tmp_path, tmp_path, metrics=METRIC)

    assert drawn == {}  # nothing completed, nothing reported per epoch: the page says so
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(p.name for p in written)
    assert not stale.exists()
    assert [r.getMessage() for r in optuna_logs.records] == []


def _searched_study() -> optuna.Study:
    """Three complete trials of one parameter, each with two epochs' reported values."""
    study = optuna.create_study(direction="maximize")
    for lr in (0.01, 0.02, 0.03):
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
        trial.report(lr, step=0)
        trial.report(2 * lr, step=1)
        study.tell(trial, 2 * lr)
    return study


VALUE_AXES = ("optimization history", "slice plots", INTERMEDIATE)


def test_the_value_axes_name_the_metric_not_objective_value(tmp_path: Path) -> None:
    drawn = figures(_searched_study(), [], tmp_path, METRIC)
    assert {title: drawn[title].layout.yaxis.title.text for title in VALUE_AXES} == dict.fromkeys(
        VALUE_AXES, "val_acc"
    )
    assert "val_acc" in drawn["parallel coordinates"].to_json()


@pytest.mark.parametrize("title", VALUE_AXES)
def test_the_png_value_axes_name_the_metric(title: str) -> None:
    _PLOTS[title](_searched_study(), METRIC)
    labels = [axes.get_ylabel() for axes in plt.gcf().axes]
    plt.close("all")
    assert labels[0] == "val_acc"


def test_a_pareto_front_names_both_metrics(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    tell_values(study)
    figure = figures(study, [], tmp_path, ("val_acc", "val_loss"))["Pareto front"]
    assert (figure.layout.xaxis.title.text, figure.layout.yaxis.title.text) == (
        "val_acc",
        "val_loss",
    )


def test_the_curves_name_the_best_trials_whose_log_is_not_here(tmp_path: Path) -> None:
    study = _searched_study()
    best = study.trials[::-1]  # trial 2 first
    best[1].user_attrs["machine"] = "gpu-2"  # trial 1 ran on another machine, with its log
    log = tmp_path / study.study_name / "trial-2" / "csv" / "metrics.csv"
    log.parent.mkdir(parents=True)
    log.write_text("epoch,train_loss,val_loss\n0,0.9,\n0,,0.8\n")

    figure = figures(study, best, tmp_path, METRIC)[CURVES]
    axes = _curves(study.study_name, best, tmp_path)
    plt.close("all")

    note = f"no CSV log under {tmp_path} for trial(s) 1 (ran on gpu-2), 0"
    assert note in figure.layout.title.text
    assert note in axes.get_title()
    assert [trace.name for trace in figure.data] == ["trial 2 train_loss", "trial 2 val_loss"]


def test_the_curves_of_trials_all_here_have_the_plain_title(tmp_path: Path) -> None:
    study = _searched_study()
    log = tmp_path / study.study_name / "trial-0" / "csv" / "metrics.csv"
    log.parent.mkdir(parents=True)
    log.write_text("epoch,train_loss,val_loss\n0,0.9,0.8\n")
    assert figures(study, study.trials[:1], tmp_path, METRIC)[CURVES].layout.title.text == CURVES
