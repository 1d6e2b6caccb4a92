"""Parallel speed-up and orchestration overhead: the same trials in-process, on 1 and 2 containers.

    python bench/parallel.py [--trials 16] [--epochs 30] [--repeats 3]

Every study gets the same ``--trials`` configurations of digits_mlp (sampled once, enqueued; no
pruning), so each side trains identical work on the managed Postgres (`hpo db up`):

- in-process: plain Optuna, ``study.optimize(n_jobs=1)`` with hpo's trial objective, torch using
  every core, as one worker container would; once in this (warm) process, and once as a script
  run in a fresh interpreter (``python`` start, torch and Lightning imports, optimize, exit),
  which is how a user runs plain Optuna and what one container's launch is compared with;
- docker x1 and docker x2: ``hpo launch --workers N`` as a user types it (each worker gets
  cores / N CPUs and as many torch threads), measured from the command's start to its exit.

Both sides do the same work: no W&B runs and no report (``--tracking none --no-report``), whose
costs are a feature's, not orchestration's (``bench/tracking.py`` measures W&B's).

Prints the medians of interleaved runs: wall times, the speed-up of 2 workers over 1, the
overhead of one container over the in-process script (per trial and as a share of the run), and
the time from ``hpo launch`` to the first trial's start. Studies and run folders are deleted at
the end.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
from trainer import search_space
from trainer.objective import TrialRunner
from trainer.samplers import make_pruner
from trainer.spec import Budget, ExperimentSpec, Resilience, Tracking
from trainer.storage import open_storage, quiet_optuna

from orchestrator import reading
from orchestrator.commands._storage import resolve_storage
from orchestrator.study import build_spec, create_or_resume

HPO = str(Path(sys.executable).parent / "hpo")
SEED = 0
Params = list[dict[str, Any]]


def _spec(trials: int, epochs: int) -> ExperimentSpec:
    """The spec `hpo launch` builds from this bench's command line (so a launch resumes it)."""
    return build_spec(
        "digits_mlp",
        [f"trainer.max_epochs={epochs}"],
        budget=Budget(trials),
        sampler="random",
        pruner="none",
        seed=SEED,
        resilience=Resilience(),
        tracking=Tracking(backend="none"),
    )


def _configurations(spec: ExperimentSpec, trials: int) -> Params:
    """``trials`` parameter sets, sampled once and given to every side."""
    space = search_space.parse(spec.search_space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED))
    return [space.suggest(study.ask()) for _ in range(trials)]


def _new_study(url: str, spec: ExperimentSpec, params: Params) -> str:
    name = f"bench-par-{uuid.uuid4().hex[:8]}"
    create_or_resume(url, name, spec, force=False)
    storage = open_storage(url, name)
    study = optuna.load_study(study_name=name, storage=storage)
    for values in params:
        study.enqueue_trial(values)
    storage.engine.dispose()
    return name


def in_process(url: str, name: str, spec: ExperimentSpec, runs: Path) -> tuple[float, float]:
    """Plain ``study.optimize``, one process: wall seconds and the study's span."""
    storage = open_storage(url, name)
    # The spec's pruner, as a worker loads it (load_study alone would prune with the median).
    study = optuna.load_study(study_name=name, storage=storage, pruner=make_pruner(spec))
    objective = TrialRunner(spec, name, runs, threads=os.cpu_count() or 1)
    started = time.perf_counter()
    study.optimize(objective, n_trials=spec.budget.trials, n_jobs=1)
    seconds = time.perf_counter() - started
    storage.engine.dispose()
    first, last = _span(url, name)
    return seconds, (last - first).total_seconds()


def in_fresh_python(name: str, runs: Path) -> tuple[float, float]:
    """The same ``study.optimize`` as a script in a new interpreter: wall seconds to its exit
    (imports included, as every worker container pays them), and the study's span.

    The script leaves with ``os._exit`` after flushing, as hpo's worker does, so the two differ
    only by what orchestration adds.
    """
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--script", name, "--runs", str(runs)],
        check=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    first, last = _span(resolve_storage(None, start=False), name)
    return seconds, (last - first).total_seconds()


def _script(name: str, runs: Path) -> None:
    """The fresh interpreter's side: read the study's spec, optimize to its budget, leave."""
    from trainer.spec import SPEC_ATTR

    quiet_optuna()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    url = resolve_storage(None, start=False)
    storage = open_storage(url, name)
    study_id = storage.get_study_id_from_name(name)
    spec = ExperimentSpec.from_json(storage.get_study_user_attrs(study_id)[SPEC_ATTR])
    storage.engine.dispose()
    in_process(url, name, spec, runs)
    sys.stdout.flush()
    os._exit(0)


def launched(
    name: str, spec: ExperimentSpec, runs: Path, workers: int
) -> tuple[float, float, float]:
    """``hpo launch --workers N``: wall seconds, seconds to the first trial's start, and the
    study's span (first trial's start to last trial's end)."""
    command = [HPO, "launch", "--study", name, "--workers", str(workers), "--runs-dir", str(runs)]
    command += ["--trials", str(spec.budget.trials), "--sampler", "random", "--pruner", "none"]
    command += ["--seed", str(SEED), "--tracking", "none", "--no-report", *spec.overrides]
    started_at = datetime.datetime.now()
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=3600)
    seconds = time.perf_counter() - started
    first, last = _span(resolve_storage(None, start=False), name)
    return seconds, (first - started_at).total_seconds(), (last - first).total_seconds()


def _span(url: str, name: str) -> tuple[datetime.datetime, datetime.datetime]:
    """When the study's first trial started and its last one ended, as the database has them."""
    storage = open_storage(url, name)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    storage.engine.dispose()
    first = min(t.datetime_start for t in trials if t.datetime_start is not None)
    return first, max(t.datetime_complete for t in trials if t.datetime_complete is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--script", help=argparse.SUPPRESS)  # the fresh interpreter's study
    parser.add_argument("--runs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.script:
        _script(args.script, args.runs)
    quiet_optuna()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # per-fit banners
    url = resolve_storage(None, start=True)
    spec = _spec(args.trials, args.epochs)
    params = _configurations(spec, args.trials)
    walls: dict[str, list[float]] = {
        "in-process, warm": [],
        "in-process, fresh python": [],
        "docker x1": [],
        "docker x2": [],
    }
    spans: dict[str, list[float]] = {label: [] for label in walls}
    first_trial: list[float] = []
    made: list[str] = []
    runs = Path(tempfile.mkdtemp(prefix="hpo-bench-parallel-"))
    try:
        for _ in range(args.repeats):
            for label, seconds in walls.items():
                made.append(name := _new_study(url, spec, params))
                if label == "in-process, warm":
                    wall, span = in_process(url, name, spec, runs)
                elif label == "in-process, fresh python":
                    wall, span = in_fresh_python(name, runs)
                else:
                    wall, to_first, span = launched(name, spec, runs, int(label[-1]))
                    first_trial.append(to_first)
                seconds.append(wall)
                spans[label].append(span)
    finally:
        for name in made:
            reading.delete(url, name)
        shutil.rmtree(runs, ignore_errors=True)
    _print(
        args,
        {label: statistics.median(values) for label, values in walls.items()},
        {label: statistics.median(values) for label, values in spans.items()},
        first_trial,
    )


def _print(
    args: argparse.Namespace,
    wall: dict[str, float],
    span: dict[str, float],
    first_trial: list[float],
) -> None:
    cores = os.cpu_count() or 1
    print(
        f"{args.trials} digits_mlp trials x {args.epochs} epochs, {cores} cores, "
        f"median of {args.repeats} interleaved runs"
    )
    print(f"{'':<28}{'wall':>8}{'trials span':>13}   (first trial start to last trial end)")
    for label, seconds in wall.items():
        print(f"{label:<28}{seconds:>7.1f}s{span[label]:>12.1f}s")
    speedup = wall["docker x1"] / wall["docker x2"]
    speedup_span = span["docker x1"] / span["docker x2"]
    baseline = "in-process, fresh python"
    overhead = wall["docker x1"] - wall[baseline]
    print(
        f"{'speed-up, 2 vs 1 worker':<28}{speedup:>7.2f}x{speedup_span:>12.2f}x"
        "   (goal >= 1.8 on 2 cores)"
    )
    per_trial = (span["docker x1"] - span[baseline]) / args.trials
    print(
        f"{'overhead, docker x1':<28}{overhead:>7.1f}s = "
        f"{100 * overhead / wall['docker x1']:.1f} % of the wall time   (goal <= 5 %)"
    )
    print(f"{'  of it, per trial':<28}{per_trial:>7.2f}s   (trials' span, vs the fresh script)")
    print(
        f"{'  of it, per launch':<28}{overhead - per_trial * args.trials:>7.1f}s   "
        "(CLI, checks, container start: paid once, whatever the study's length)"
    )
    warm = wall["docker x1"] - wall["in-process, warm"]
    print(
        f"{'  vs the warm process':<28}{warm:>7.1f}s = {100 * warm / wall['docker x1']:.1f} %   "
        "(adds the interpreter start and the torch + Lightning imports every worker pays)"
    )
    print(
        f"{'launch to first trial':<28}{statistics.median(first_trial):>8.1f} s   "
        "(median over the docker runs; goal <= 10 s, image present)"
    )


if __name__ == "__main__":
    main()
