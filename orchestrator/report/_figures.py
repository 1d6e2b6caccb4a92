"""The report's figures, as plotly figures: Optuna's own plots and the best trials' loss curves.

Optuna's visualisation module draws the search (history, importances, parallel coordinates,
slices, intermediate values); the curves come from each trial's CSV log in the run folder, since
the database holds only the monitored metric per epoch.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna import visualization as vis
from optuna.trial import FrozenTrial, TrialState

__all__ = ["CURVES", "INTERMEDIATE", "curves_of", "curves_title", "figures", "quiet_plotting"]

CURVES = "loss curves of the best trials"
INTERMEDIATE = "intermediate values (val metric per epoch)"
BEST_CURVES = 3


def figures(
    study: optuna.Study, best: list[FrozenTrial], runs_dir: Path, metrics: Sequence[str]
) -> dict[str, go.Figure]:
    """Title -> figure, for what this study can show (e.g. importances need 2 complete trials).

    The axes name the objective's ``metrics`` (``val_acc``), where Optuna would write "Objective
    Value"; per-epoch values are those of the first metric, the one trials report.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plots: dict[str, Callable[[], go.Figure]] = {}
    metric = metrics[0]
    if len(study.directions) == 1:
        if complete:  # each of these would be an empty chart (and an Optuna warning) without
            plots["optimization history"] = lambda: vis.plot_optimization_history(
                study, target_name=metric
            )
        if len(complete) >= 2:
            plots["parameter importances"] = lambda: vis.plot_param_importances(
                study, target_name=metric
            )
        if complete:
            plots["parallel coordinates"] = lambda: vis.plot_parallel_coordinate(
                study, target_name=metric
            )
            plots["slice plots"] = lambda: vis.plot_slice(study, target_name=metric)
        if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
            plots[INTERMEDIATE] = lambda: vis.plot_intermediate_values(study).update_yaxes(
                title_text=metric
            )
    else:
        plots["Pareto front"] = lambda: vis.plot_pareto_front(study, target_names=list(metrics))
    made: dict[str, go.Figure] = {}
    with quiet_plotting():
        for title, plot in plots.items():
            made[title] = plot()
    if best:
        made[CURVES] = _curves_figure(study.study_name, best[:BEST_CURVES], runs_dir)
    return made


@contextmanager
def quiet_plotting() -> Iterator[None]:
    """Optuna's notes while it draws ("experimental", "no complete trials"): not the reader's.

    They would reach the terminal of `hpo report` and of a launch; the page shows what is there.
    """
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def curves_of(study_name: str, trial: FrozenTrial, runs_dir: Path) -> dict[str, list[float]]:
    """``train_loss`` and ``val_loss`` per epoch, from the trial's CSV log.

    A series the log lacks (a user's model may log neither) is left out, as is every series
    when there is no log: an empty one would be a legend entry with no line.
    """
    path = _csv_log(study_name, trial, runs_dir)
    series: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    if not path.is_file():
        return {}
    with path.open() as f:
        for row in csv.DictReader(f):
            for name, values in series.items():
                if row.get(name):
                    values.append(float(row[name]))
    return {name: values for name, values in series.items() if values}


def curves_title(study_name: str, trials: list[FrozenTrial], runs_dir: Path) -> str:
    """The curves' title, naming the trials whose CSV log is not here, and where each ran.

    Those ran on another machine (each keeps its own run folder) or had their folder removed:
    the reader should know a curve is missing, not take the chart as all there is, and where
    to find it.
    """
    missing = [t for t in trials if not _csv_log(study_name, t, runs_dir).is_file()]
    if not missing:
        return CURVES
    numbers = ", ".join(map(_number_and_machine, missing))
    return f"{CURVES}<br>(no CSV log under {runs_dir} for trial(s) {numbers})"


def _number_and_machine(trial: FrozenTrial) -> str:
    machine = trial.user_attrs.get("machine")
    return f"{trial.number} (ran on {machine})" if machine else str(trial.number)


def _csv_log(study_name: str, trial: FrozenTrial, runs_dir: Path) -> Path:
    return runs_dir / study_name / f"trial-{trial.number}" / "csv" / "metrics.csv"


def _curves_figure(study_name: str, trials: list[FrozenTrial], runs_dir: Path) -> go.Figure:
    figure = go.Figure()
    for trial in trials:
        for name, values in curves_of(study_name, trial, runs_dir).items():
            dash = "solid" if name == "train_loss" else "dash"
            figure.add_trace(
                go.Scatter(
                    x=list(range(len(values))),
                    y=values,
                    mode="lines",
                    name=f"trial {trial.number} {name}",
                    line={"dash": dash},
                )
            )
    title = curves_title(study_name, trials, runs_dir)
    figure.update_layout(title=title, xaxis_title="epoch", yaxis_title="loss")
    return figure
