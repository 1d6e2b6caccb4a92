"""Samplers and pruners from the spec.

Samplers are not stored in the database, so every worker builds its own from the same spec.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from trainer.spec import ExperimentSpec

__all__ = ["SeededAtFirstTrial", "make_pruner", "make_sampler"]


def _tpe(seed: int | None) -> BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True)


_SAMPLERS: dict[str, Callable[[int | None], BaseSampler]] = {
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": lambda seed: optuna.samplers.CmaEsSampler(seed=seed),
    "qmc": lambda seed: optuna.samplers.QMCSampler(seed=seed),
    "tpe": _tpe,
}


def make_sampler(spec: ExperimentSpec) -> BaseSampler:
    """The spec's sampler for a worker.

    TPE runs with ``constant_liar`` so a worker treats its peers' RUNNING trials as bad results
    and samples elsewhere, and ``multivariate`` so correlated parameters (lr and batch size) are
    modelled together. With a seed, each worker's sampler is seeded from it and its first
    trial's number (``SeededAtFirstTrial``); without one, it seeds itself at random.
    """
    make = _SAMPLERS[spec.sampler]
    return make(None) if spec.seed is None else SeededAtFirstTrial(make, spec.seed)


class SeededAtFirstTrial(BaseSampler):
    """The spec's sampler, seeded from the study's seed and the number of its first trial.

    A sampler seeded once per worker draws the same numbers each time it starts: a restarted
    worker, a resumed study and a second machine's launch would all repeat the trials of the
    first (every random trial, and TPE's first ten). A trial's number is unique in its study, so
    samplers that start at different trials draw different numbers; one worker on a new study
    draws the same ones in every run. It is made once, at its first trial, and kept: made anew
    for every trial, TPE would redo its search-space bookkeeping over the whole study each time.
    """

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make = make
        self._seed = seed
        self._made: BaseSampler | None = None

    @property
    def _sampler(self) -> BaseSampler:
        if self._made is None:  # Optuna calls `before_trial` first; this is a safety net
            self._made = self._make(self._seed)
        return self._made

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """At the first trial, make the sampler from the seed and the trial's number."""
        if self._made is None:
            mixed = np.random.SeedSequence([self._seed, trial.number]).generate_state(1)[0]
            self._made = self._make(int(mixed))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """The seeded sampler's."""
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        """The seeded sampler's."""
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """The seeded sampler's."""
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """The seeded sampler's."""
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing: the seed comes from the first trial's number (Optuna calls this per thread)."""


def make_pruner(spec: ExperimentSpec) -> optuna.pruners.BasePruner:
    """The spec's pruner, Optuna's defaults; none for multi-objective studies (unsupported)."""
    if spec.pruner == "none" or len(spec.objective.metrics) > 1:
        return optuna.pruners.NopPruner()
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.MedianPruner()
