"""A digits_mlp spec for the tests that need one, but not its details."""

from __future__ import annotations

import dataclasses
from typing import Any

from trainer.spec import Budget, ExperimentSpec, Resilience

from orchestrator.study import build_spec


def digits_spec(**changes: Any) -> ExperimentSpec:
    """digits_mlp, 4 trials, random sampler, no pruner, seed 0; ``changes`` replace fields."""
    spec = build_spec(
        "digits_mlp",
        [],
        budget=Budget(4),
        sampler="random",
        pruner="none",
        seed=0,
        resilience=Resilience(),
    )
    return dataclasses.replace(spec, **changes)
