"""`hpo retrain`: which trial, and its val metric back (same seed, CPU) with a test score."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from trainer.objective import TrialRunner
from trainer.spec import Budget, Resilience

from orchestrator.errors import ConfigError
from orchestrator.retrain import pick_trial, retrain
from orchestrator.study import build_spec


def _study() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    return study


def test_the_best_trial_by_default_or_a_completed_one_by_number() -> None:
    study = _study()
    trials, best = study.get_trials(), [study.best_trial]
    assert pick_trial(trials, best, None) is best[0]
    assert pick_trial(trials, best, 1).number == 1
    with pytest.raises(ConfigError, match="trial 3 is FAIL, not COMPLETE"):
        pick_trial(trials, best, 3)
    with pytest.raises(ConfigError, match=r"no trial 9 in this study \(0..3\)"):
        pick_trial(trials, best, 9)
    with pytest.raises(ConfigError, match="no trial of this study has completed"):
        pick_trial([], [], None)


def test_a_failed_trial_points_to_the_retry_of_its_params() -> None:
    study = _study()  # trial 3 failed
    retried = {"retry_history": [3], "failed_trial": 3}
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, system_attrs=retried))
    twice = {"retry_history": [3, 4], "failed_trial": 3}
    study.add_trial(
        optuna.trial.create_trial(
            value=0.5,
            params={"x": 0.5},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
            system_attrs=twice,
        )
    )
    trials, best = study.get_trials(), [study.best_trial]
    for failed in (3, 4):
        with pytest.raises(
            ConfigError,
            match=f"trial {failed} is FAIL, not COMPLETE; it ran "
            "again as trial 5, which completed: --trial 5",
        ):
            pick_trial(trials, best, failed)
    with pytest.raises(ConfigError, match=r"trial 3 .* as trial 4, which is FAIL: pick another"):
        pick_trial(trials[:5], best, 3)
    running = optuna.trial.create_trial(state=TrialState.RUNNING, system_attrs=retried)
    running.number = 4
    with pytest.raises(ConfigError, match="as trial 4, which is RUNNING: retrain it once it"):
        pick_trial([*trials[:4], running], best, 3)


@pytest.mark.slow
def test_retrain_reproduces_the_trials_val_metric_and_tests_it(tmp_path: Path) -> None:
    spec = build_spec(
        "digits_mlp",
        ["trainer.max_epochs=3", "threads=1"],
        budget=Budget(1),
        sampler="random",
        pruner="none",
        seed=0,
        resilience=Resilience(),
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(TrialRunner(spec, "r", tmp_path / "runs", threads=1), n_trials=1)
    done = retrain(spec, study.best_trial.params, tmp_path / "again")
    assert done.metrics["val_acc"] == pytest.approx(study.best_value, abs=1e-6)
    assert 0 < done.metrics["test_acc"] <= 1
    assert done.checkpoint.stat().st_size > 0 and "model" in done.config.read_text()
