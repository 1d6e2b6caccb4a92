"""PNG copies of the report's figures, drawn with matplotlib (kaleido needs a browser to export).

Optuna's matplotlib module draws the same plots as its plotly one; the loss curves are drawn
here from the same CSV logs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import optuna
from matplotlib.axes import Axes
from optuna.trial import FrozenTrial
from optuna.visualization import matplotlib as mvis

from orchestrator.report._figures import (
    BEST_CURVES,
    CURVES,
    INTERMEDIATE,
    curves_of,
    curves_title,
    quiet_plotting,
)

__all__ = ["write_pngs"]

# Title -> drawing, given the study and its objective's metric names (as in ``figures``).
_PLOTS: dict[str, Callable[[optuna.Study, Sequence[str]], object]] = {
    "optimization history": lambda s, m: mvis.plot_optimization_history(s, target_name=m[0]),
    "parameter importances": lambda s, m: mvis.plot_param_importances(s, target_name=m[0]),
    "parallel coordinates": lambda s, m: mvis.plot_parallel_coordinate(s, target_name=m[0]),
    "slice plots": lambda s, m: mvis.plot_slice(s, target_name=m[0]),
    INTERMEDIATE: lambda s, m: mvis.plot_intermediate_values(s).set_ylabel(m[0]),
    "Pareto front": lambda s, m: mvis.plot_pareto_front(s, target_names=list(m)),
}


def write_pngs(
    study: optuna.Study,
    titles: list[str],
    best: list[FrozenTrial],
    runs_dir: Path,
    out: Path,
    *,
    metrics: Sequence[str],
) -> list[Path]:
    """One PNG per title (the figures the HTML page has); returns their paths.

    PNGs of the other figures, left by an earlier report of the study, are removed: the folder
    shows what the page shows.
    """
    written = []
    for title in titles:
        path = out / f"{_slug(title)}.png"
        with quiet_plotting():
            if title == CURVES:
                _curves(study.study_name, best[:BEST_CURVES], runs_dir)
            else:
                _PLOTS[title](study, metrics)
        figure = plt.gcf()
        # A slice plot has one panel per parameter: 2 inches each keeps their labels apart.
        figure.set_size_inches(max(10, 2 * len(figure.axes)), 6)
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close("all")
        written.append(path)
    for title in {*_PLOTS, CURVES} - set(titles):  # from an earlier report of the study
        (out / f"{_slug(title)}.png").unlink(missing_ok=True)
    return written


def _curves(study_name: str, trials: list[FrozenTrial], runs_dir: Path) -> Axes:
    _, axes = plt.subplots()
    for trial in trials:
        for name, values in curves_of(study_name, trial, runs_dir).items():
            style = "-" if name == "train_loss" else "--"
            axes.plot(range(len(values)), values, style, label=f"trial {trial.number} {name}")
    title = curves_title(study_name, trials, runs_dir).replace("<br>", "\n")
    axes.set(title=title, xlabel="epoch", ylabel="loss")
    if axes.lines:  # none when no trial's log is here
        axes.legend()
    return axes


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.split(" (", 1)[0]).strip("-").lower()
