"""A small two-objective study, the same in every test of how hpo shows a Pareto front."""

from __future__ import annotations

import optuna
from trainer.spec import Budget, ExperimentSpec, Resilience

from orchestrator.study import build_spec

TWO_OBJECTIVES = ("optimized_metric=[val_acc,val_loss]", "direction=[maximize,minimize]")
# val_acc and val_loss of trials 0, 1, 2: the front is trials 0 and 1 (the first dominates 2).
VALUES = ([0.9, 0.3], [0.8, 0.2], [0.7, 0.4])


def two_objective_spec() -> ExperimentSpec:
    """digits_mlp maximizing val_acc and minimizing val_loss, as `hpo launch` would store it."""
    return build_spec(
        "digits_mlp",
        TWO_OBJECTIVES,
        budget=Budget(len(VALUES)),
        sampler="random",
        pruner="none",
        seed=0,
        resilience=Resilience(),
    )


def tell_values(study: optuna.Study) -> None:
    """Finish one trial per entry of ``VALUES``."""
    for values in VALUES:
        study.tell(study.ask(), values)
