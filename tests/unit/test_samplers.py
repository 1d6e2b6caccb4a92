"""A seeded study never repeats a draw: not across workers, restarts, resumes or machines."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
from optuna.samplers import BaseSampler
from trainer.samplers import SeededAtFirstTrial, make_sampler
from trainer.spec import SAMPLERS, ExperimentSpec

from tests.specs import digits_spec


@pytest.fixture(scope="module")
def seeded() -> ExperimentSpec:
    return digits_spec(seed=7)


def _spec(spec: ExperimentSpec, sampler: str, seed: int | None = 7) -> ExperimentSpec:
    return dataclasses.replace(spec, sampler=sampler, seed=seed)


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0, 1) + trial.suggest_int("n", 0, 1000)


def _run(study: optuna.Study, sampler: BaseSampler, trials: int) -> None:
    """A worker joining ``study`` with a sampler of its own (as a worker container loads it)."""
    joined = optuna.load_study(study_name=study.study_name, storage=study._storage, sampler=sampler)
    joined.optimize(_objective, n_trials=trials)


def _draws(study: optuna.Study) -> list[tuple[float, int]]:
    return [(t.params["x"], t.params["n"]) for t in study.trials]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_resumed_or_restarted_seeded_worker_draws_new_params(
    seeded: ExperimentSpec, sampler: str
) -> None:
    spec = _spec(seeded, sampler)
    study = optuna.create_study()
    _run(study, make_sampler(spec), 3)
    _run(study, make_sampler(spec), 3)  # the same command again: the same seed
    draws = _draws(study)
    assert len(set(draws)) == len(draws) == 6  # TPE's first ten trials are random ones


def test_two_seeded_workers_of_one_study_draw_different_params(seeded: ExperimentSpec) -> None:
    study = optuna.create_study()
    first, second = make_sampler(seeded), make_sampler(seeded)  # e.g. w0 on two machines
    for _ in range(3):
        _run(study, first, 1)
        _run(study, second, 1)
    draws = _draws(study)
    assert len(set(draws)) == len(draws) == 6


def test_one_seeded_worker_draws_the_same_params_in_every_run(seeded: ExperimentSpec) -> None:
    studies = [optuna.create_study() for _ in range(2)]
    for study in studies:
        _run(study, make_sampler(seeded), 4)
    assert _draws(studies[0]) == _draws(studies[1])
    other = optuna.create_study()
    _run(other, make_sampler(_spec(seeded, "random", seed=8)), 4)
    assert set(_draws(other)).isdisjoint(_draws(studies[0]))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_takes_the_seed_as_its_seed(seeded: ExperimentSpec, sampler: str) -> None:
    made = make_sampler(_spec(seeded, sampler))
    assert isinstance(made, SeededAtFirstTrial)
    study = optuna.create_study()
    _run(study, made, 3)
    assert len(study.trials) == 3
    assert type(made._sampler).__name__.lower().startswith(sampler[:3])


def test_an_unseeded_spec_gets_the_plain_sampler(seeded: ExperimentSpec) -> None:
    made = make_sampler(_spec(seeded, "tpe", seed=None))
    assert isinstance(made, optuna.samplers.TPESampler)
