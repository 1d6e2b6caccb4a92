"""Load the study, draw the figures, write the page and the PNGs."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState
from trainer.spec import ExperimentSpec

from orchestrator.reading import best_trials, opened, retrain_command, spec_of
from orchestrator.report._figures import figures
from orchestrator.report._page import page
from orchestrator.report._png import write_pngs

__all__ = ["write_report"]


def write_report(url: str, name: str, runs_dir: Path, out: Path) -> Path:
    """Write ``<out>/index.html`` and one PNG per figure; return the page's path.

    Raises:
        ConfigError: No such study, or one not made by hpo.
    """
    with opened(url, name) as study:
        spec = spec_of(study)
        best = best_trials(study)
        ranked = _best_first(study)
        metrics = spec.objective.metrics
        drawn = figures(study, ranked, runs_dir, metrics)
        retrain = [retrain_command(spec, trial.params) for trial in best]
        out.mkdir(parents=True, exist_ok=True)
        index = out / "index.html"
        index.write_text(
            page(study, drawn, best, retrain, summary=_summary(study, spec), metrics=metrics)
        )
        write_pngs(study, list(drawn), ranked, runs_dir, out, metrics=metrics)
        return index


def _summary(study: optuna.Study, spec: ExperimentSpec) -> str:
    """The line under the title: what was searched and how the trials ended."""
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] += 1
    ended = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    return f"{spec.experiment}, {spec.sampler} sampler, budget {spec.budget.trials}: {ended}"


def _best_first(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials, best first (by the first objective)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    maximize = study.directions[0] is optuna.study.StudyDirection.MAXIMIZE
    return sorted(complete, key=lambda t: t.values[0], reverse=maximize)
