"""What W&B tracking adds to a trial: the same 10-epoch digits trial with and without its run.

Both sides run hpo's trial objective (``TrialRunner``) on the same params, in one process,
interleaved so machine noise hits both alike; W&B is offline (files only), as a worker without a
key runs it. The first W&B run of a process also starts wandb-core (paid once per worker); it is
measured apart. Prints medians, their ratio, and the median of the per-pair ratios.

    python bench/tracking.py [--repeats 25] [--epochs 10]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import optuna
from trainer.objective import TrialRunner
from trainer.spec import Budget, ExperimentSpec, Resilience, Tracking
from trainer.storage import quiet_optuna
from trainer.tracking import Tracker

from orchestrator.study import build_spec

PARAMS = {"hidden_dim": 128, "depth": 2, "batch_size": 64, "optimizer": "adamw"}


def _spec(epochs: int, tracking: str) -> ExperimentSpec:
    return build_spec(
        "digits_mlp",
        [f"trainer.max_epochs={epochs}", "threads=1"],
        budget=Budget(1),
        sampler="random",
        pruner="none",
        seed=0,
        resilience=Resilience(),
        tracking=Tracking(backend=tracking),
    )


def one_trial(runner: TrialRunner, name: str) -> float:
    """Seconds for one trial of ``runner`` in a fresh in-memory study.

    Every such study's trial is number 0: its folder is removed first (untimed), so each trial
    writes a new one, as in a real study (and Lightning does not warn of a folder in use).
    """
    shutil.rmtree(runner.runs_dir / runner.study_name / "trial-0", ignore_errors=True)
    study = optuna.create_study(study_name=name, direction="maximize")
    study.enqueue_trial(PARAMS)
    started = time.perf_counter()
    study.optimize(runner, n_trials=1)
    return time.perf_counter() - started


def _measure(runs: Path, epochs: int, repeats: int) -> tuple[float, dict[str, list[float]]]:
    """The first W&B trial's seconds, then each side's interleaved trial times."""
    plain_spec, tracked_spec = _spec(epochs, "none"), _spec(epochs, "wandb")
    plain = TrialRunner(plain_spec, "plain", runs, threads=1)
    tracker = Tracker(tracked_spec, "tracked", runs, 0)
    tracked = TrialRunner(tracked_spec, "tracked", runs, threads=1, tracker=tracker)
    one_trial(plain, "warm-up")
    first = one_trial(tracked, "first")  # starts wandb-core
    times: dict[str, list[float]] = {"without W&B": [], "with W&B (offline)": []}
    for i in range(repeats):
        times["without W&B"].append(one_trial(plain, f"plain-{i}"))
        times["with W&B (offline)"].append(one_trial(tracked, f"tracked-{i}"))
    return first, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    quiet_optuna()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    os.environ["WANDB_MODE"] = "offline"
    with tempfile.TemporaryDirectory(
        prefix="hpo-bench-tracking-", ignore_cleanup_errors=True
    ) as folder:
        first, times = _measure(Path(folder), args.epochs, args.repeats)
    medians = {label: statistics.median(values) for label, values in times.items()}
    print(f"one digits_mlp trial, {args.epochs} epochs, 1 thread, median of {args.repeats}")
    for label, seconds in medians.items():
        print(f"{label:<24}{seconds:>8.3f} s")
    ratio = medians["with W&B (offline)"] / medians["without W&B"]
    print(f"{'ratio':<24}{ratio:>8.2f}x   (goal < 1.10)")
    # Each tracked trial beside the plain one just before it: load that drifts over the run
    # (this machine is shared) moves both alike, so this ratio is steadier than the one above.
    pairs = zip(times["without W&B"], times["with W&B (offline)"], strict=True)
    paired = statistics.median(tracked / plain for plain, tracked in pairs)
    print(f"{'ratio, median of pairs':<24}{paired:>8.2f}x")
    added = medians["with W&B (offline)"] - medians["without W&B"]
    # W&B's cost is mostly per run (start, finish), not per epoch: in seconds, it carries over
    # to trials of any length, where the ratio does not.
    print(f"{'W&B adds per trial':<24}{added * 1000:>8.0f} ms")
    print(f"{'first W&B trial':<24}{first:>8.3f} s   (starts wandb-core, once per worker)")


if __name__ == "__main__":
    main()
