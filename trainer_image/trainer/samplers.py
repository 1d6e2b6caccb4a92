"""Samplers and pruners from the spec.

Samplers are not stored in the database, so every worker builds its own from the same spec.
"""

from __future__ import annotations

import optuna

from trainer.spec import ExperimentSpec

__all__ = ["make_pruner", "make_sampler"]


def make_sampler(spec: ExperimentSpec, worker: int) -> optuna.samplers.BaseSampler:
    """The spec's sampler for one worker.

    Workers must not draw the same numbers: each gets ``seed + worker``. TPE runs with
    ``constant_liar`` so a worker treats its peers' RUNNING trials as bad results and samples
    elsewhere, and ``multivariate`` so correlated parameters (lr and batch size) are modelled
    together.
    """
    seed = None if spec.seed is None else spec.seed + worker
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if spec.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True)


def make_pruner(spec: ExperimentSpec) -> optuna.pruners.BasePruner:
    """The spec's pruner, Optuna's defaults; none for multi-objective studies (unsupported)."""
    if spec.pruner == "none" or len(spec.objective.metrics) > 1:
        return optuna.pruners.NopPruner()
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.MedianPruner()
