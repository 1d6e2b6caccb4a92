"""Load the study, draw the figures, write the page and the PNGs."""

from __future__ import annotations

from pathlib import Path

import optuna
from trainer.storage import open_storage, where

from orchestrator.errors import ConfigError
from orchestrator.reading import best_trials, retrain_command, spec_of
from orchestrator.report._figures import figures
from orchestrator.report._page import page
from orchestrator.report._png import write_pngs

__all__ = ["write_report"]


def write_report(url: str, name: str, runs_dir: Path, out: Path) -> Path:
    """Write ``<out>/index.html`` and one PNG per figure; return the page's path.

    Raises:
        ConfigError: No such study, or one not made by hpo.
    """
    storage = open_storage(url, name)
    try:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise ConfigError(
                f"no study `{name}` at {where(url)}; `hpo studies` lists them."
            ) from None
        spec = spec_of(study)
        best = best_trials(study)
        ranked = _best_first(study)
        drawn = figures(study, ranked, runs_dir)
        retrain = retrain_command(spec, best[0].params) if best else None
        counts = {s.name.lower(): 0 for s in optuna.trial.TrialState}
        for trial in study.get_trials(deepcopy=False):
            counts[trial.state.name.lower()] += 1
        summary = (
            f"{spec.experiment}, {spec.sampler} sampler, budget {spec.budget.trials}: "
            + ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        )
        out.mkdir(parents=True, exist_ok=True)
        index = out / "index.html"
        index.write_text(page(study, drawn, best, retrain, summary))
        write_pngs(study, list(drawn), ranked, runs_dir, out)
        return index
    finally:
        storage.engine.dispose()


def _best_first(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Complete trials, best first (by the first objective)."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    maximize = study.directions[0] is optuna.study.StudyDirection.MAXIMIZE
    return sorted(complete, key=lambda t: t.values[0], reverse=maximize)
