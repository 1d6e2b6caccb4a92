"""The storage ceiling: hpo's worker loop beside plain Optuna, same Postgres, trivial objective.

    python bench/storage.py [--trials 200] [--history 10000]

Prints, measured in one run: trials/s with 1 and 2 workers for the random and TPE samplers,
TPE's per-trial cost with 0 and with --history finished trials already in the study, and SQL
statements per random trial (counted with a SQLAlchemy event listener). The plain-Optuna column
is `study.optimize` with `n_trials` per worker on an identically configured storage. Uses the
managed Postgres (`hpo db up`); every study it makes is deleted at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import uuid
from collections.abc import Callable
from typing import NamedTuple

import optuna
from sqlalchemy import event
from trainer.budget import BudgetGate
from trainer.retries import RetryAsNewAttempt
from trainer.spec import Budget, Resilience
from trainer.stopping import StopRequest
from trainer.storage import open_storage, quiet_optuna
from trainer.trial_loop import TrialLoop

from orchestrator import reading
from orchestrator.commands._storage import resolve_storage
from orchestrator.study import build_spec, create_or_resume

Runner = Callable[[str, str, str, int, int], tuple[int, float]]  # (statements, seconds)


class Rate(NamedTuple):
    """One side's result: trials per second and SQL statements per trial."""

    per_second: float
    statements: int


def objective(trial: optuna.Trial) -> list[float]:
    return [trial.suggest_float("x", -10, 10) ** 2 + trial.suggest_float("y", -10, 10) ** 2]


def _sampler(name: str, worker: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=worker, constant_liar=True, multivariate=True)
    return optuna.samplers.RandomSampler(seed=worker)


def plain(url: str, study: str, sampler: str, worker: int, trials: int) -> tuple[int, float]:
    """Plain Optuna: study.optimize with n_trials per worker. Returns (statements, seconds)."""
    quiet_optuna()
    storage = open_storage(url, study)
    loaded = optuna.load_study(study_name=study, storage=storage, sampler=_sampler(sampler, worker))
    _read_history(loaded)
    counted = _count_statements(storage)
    started = time.perf_counter()
    loaded.optimize(lambda t: objective(t)[0], n_trials=trials)
    seconds = time.perf_counter() - started
    storage.engine.dispose()
    return counted[0], seconds


def hpo(url: str, study: str, sampler: str, worker: int, trials: int) -> tuple[int, float]:
    """hpo's worker loop (budget gate, heartbeat, reaping, attrs) with the same objective."""
    quiet_optuna()
    resilience = Resilience()
    retry = RetryAsNewAttempt(max_retry=resilience.max_retry)
    storage = open_storage(
        url,
        study,
        heartbeat_s=resilience.heartbeat_s,
        grace_s=resilience.grace_s,
        stale_callback=retry,
    )
    loaded = optuna.load_study(study_name=study, storage=storage, sampler=_sampler(sampler, worker))
    study_id = storage.get_study_id_from_name(study)
    budget = loaded.user_attrs["bench.budget"]
    gate = BudgetGate(storage.engine, study_id, budget, resilience.max_failed, None)
    loop = TrialLoop(loaded, storage, study_id, objective, resilience, worker, retry, StopRequest())
    _read_history(loaded)
    counted = _count_statements(storage)
    started = time.perf_counter()
    loop.pull(gate)
    seconds = time.perf_counter() - started
    storage.engine.dispose()
    return counted[0], seconds


def _read_history(study: optuna.Study) -> None:
    """Load the study's trials into the storage's cache before any trial starts, on both sides.

    A process's first read takes every trial (~2 s at 10,000); plain Optuna pays it before its
    first trial is created, hpo's loop in its first trial's sampling: read here, it stays out
    of both sides' span, which then measures the cost per trial.
    """
    study.get_trials(deepcopy=False)


def _count_statements(storage: optuna.storages.RDBStorage) -> list[int]:
    counted = [0]

    def count(*_: object) -> None:
        counted[0] += 1

    event.listen(storage.engine, "before_cursor_execute", count)
    return counted


def _new_study(url: str, made: list[str], history: int = 0) -> str:
    """A study of digits_mlp's spec with ``history`` finished trials already in it.

    Its name joins ``made`` as soon as it exists, so that it is deleted even if this run stops
    while the history is still being added (10,000 trials take minutes).
    """
    name = f"bench-{uuid.uuid4().hex[:8]}"
    spec = build_spec(
        "digits_mlp",
        [],
        budget=Budget(1),  # each run sets its own budget in bench.budget
        sampler="random",
        pruner="none",
        seed=0,
        resilience=Resilience(),
    )
    create_or_resume(url, name, spec, force=False)
    made.append(name)
    if history:
        storage = open_storage(url, name)
        study = optuna.load_study(study_name=name, storage=storage)
        study.add_trials([_finished(i) for i in range(history)])
        storage.engine.dispose()
    return name


def _finished(i: int) -> optuna.trial.FrozenTrial:
    """A deterministic finished trial for the history."""
    x, y = (i % 200) / 10 - 10, (i % 97) / 5 - 10
    space = {name: optuna.distributions.FloatDistribution(-10, 10) for name in ("x", "y")}
    value = x * x + y * y
    return optuna.trial.create_trial(params={"x": x, "y": y}, distributions=space, value=value)


def measure(
    url: str, name: str, runner: Runner, sampler: str, *, workers: int, trials: int
) -> Rate:
    """Run ``trials`` more trials of study ``name``; trials/s over their own span (first start
    to last completion, as the database recorded them) and statements per trial.
    """
    storage = open_storage(url, name)
    study = optuna.load_study(study_name=name, storage=storage)
    before = len(study.get_trials(deepcopy=False))
    study.set_user_attr("bench.budget", before + trials)
    jobs = [(url, name, sampler, k, trials // workers) for k in range(workers)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.starmap(runner, jobs)
    new = study.get_trials(deepcopy=False)[before:]
    storage.engine.dispose()
    starts = [t.datetime_start for t in new if t.datetime_start is not None]
    ends = [t.datetime_complete for t in new if t.datetime_complete is not None]
    seconds = (max(ends) - min(starts)).total_seconds()
    return Rate(len(new) / seconds, sum(count for count, _ in results) // len(new))


def median_pair(
    url: str, sampler: str, workers: int, trials: int, *, repeats: int, made: list[str],
    history: int = 0,
) -> dict[str, Rate]:  # fmt: skip
    """Median trials/s and statements/trial of each side, the two sides interleaved.

    With ``history``, both sides take turns on one study that holds it (building 10,000
    trials takes minutes); each turn adds ``trials``, a fraction of a percent of the history.
    """
    shared = _new_study(url, made, history) if history else None
    runs: dict[str, list[Rate]] = {"plain": [], "hpo": []}
    for _ in range(repeats):
        for label, runner in (("plain", plain), ("hpo", hpo)):
            name = shared or _new_study(url, made)
            runs[label].append(measure(url, name, runner, sampler, workers=workers, trials=trials))
    return {
        label: Rate(
            statistics.median(r.per_second for r in values),
            int(statistics.median(r.statements for r in values)),
        )
        for label, values in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_optuna()
    url = resolve_storage(None, start=True)
    made: list[str] = []
    try:
        _print_table(url, args, made)
    finally:  # an interrupted or failed run leaves no bench study behind either
        for name in made:
            reading.delete(url, name)


def _print_table(url: str, args: argparse.Namespace, made: list[str]) -> None:
    """Every row of the table; ``made`` collects the studies made for it."""
    print(
        f"trivial objective, {args.trials} trials a run, median of {args.repeats} interleaved runs"
    )
    print(f"{'':<28}{'plain optuna':>13}{'hpo loop':>10}{'ratio':>8}")
    statements = {}
    for sampler in ("random", "tpe"):
        for workers in (1, 2):
            result = median_pair(
                url, sampler, workers, args.trials, repeats=args.repeats, made=made
            )
            (plain_rate, plain_sql), (hpo_rate, hpo_sql) = result["plain"], result["hpo"]
            statements[(sampler, workers)] = (plain_sql, hpo_sql)
            row = f"{sampler}, {workers} worker(s), trials/s"
            print(f"{row:<28}{plain_rate:>13.1f}{hpo_rate:>10.1f}{plain_rate / hpo_rate:>7.2f}x")
    for history in (0, args.history):
        result = median_pair(url, "tpe", 1, 20, repeats=args.repeats, made=made, history=history)
        plain_ms, hpo_ms = 1000 / result["plain"].per_second, 1000 / result["hpo"].per_second
        row = f"tpe ms/trial, {history} done"
        print(f"{row:<28}{plain_ms:>13.1f}{hpo_ms:>10.1f}{hpo_ms / plain_ms:>7.2f}x")
    plain_sql, hpo_sql = statements[("random", 1)]
    row = "SQL statements per trial"
    print(f"{row:<28}{plain_sql:>13}{hpo_sql:>10}   (random, 1 worker; goal <= 35)")
    print("ratio: plain/hpo for throughput, hpo/plain for cost; goal <= 1.10")


if __name__ == "__main__":
    main()
