"""The C++ entropy kernel against the numpy lines it replaces, measured side by side in one run.

    python bench/entropy.py [--repeats 7]

Per call (one vector of 10 and of 1,000 values) against ``-(p * np.log(p)).sum()`` and
``scipy.stats.entropy``; a batch of 1e6 x 16 rows against numpy vectorised over the array; and
the Dataset's ``__getitem__`` with the kernel against the same item computed with numpy. Medians
of interleaved repeats; ratios are numpy time / C++ time (higher is better for the kernel).
"""

from __future__ import annotations

import argparse
import os
import statistics
import timeit
from collections.abc import Callable

import numpy as np
from scipy.stats import entropy as scipy_entropy
from trainer.data import probdist
from trainer.data.probdist import ProbDistributionDataset
from trainer.entropy import entropy, entropy_rows


def numpy_entropy(p: np.ndarray) -> float:
    """The line the kernel replaces (0 * log 0 handled as the kernel does)."""
    nonzero = p[p > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


def numpy_rows(a: np.ndarray) -> np.ndarray:
    """Vectorised over the whole array."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, a * np.log(a), 0.0)
    return -terms.sum(axis=1)


def per_call(function: Callable[[], object], repeats: int) -> float:
    """Median seconds of one call."""
    timer = timeit.Timer(function)
    calls, _ = timer.autorange()
    return statistics.median(t / calls for t in timer.repeat(repeats, calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    r = args.repeats
    print(f"median of {r} repeats; ratio = numpy time / C++ time")
    print(f"{'':<30}{'C++':>11}{'numpy':>11}{'scipy':>11}{'ratio':>8}")
    for n in (10, 1000):
        p = np.random.default_rng(0).dirichlet(np.ones(n))
        ours = per_call(lambda p=p: entropy(p), r)
        theirs = per_call(lambda p=p: numpy_entropy(p), r)
        scipys = per_call(lambda p=p: scipy_entropy(p), r)
        row = f"one vector of {n}"
        print(
            f"{row:<30}{ours * 1e6:>9.2f}us{theirs * 1e6:>9.2f}us{scipys * 1e6:>9.2f}us"
            f"{theirs / ours:>7.1f}x"
        )
    batch = np.random.default_rng(1).dirichlet(np.ones(16), size=1_000_000)
    single = per_call(lambda: entropy_rows(batch, threads=1), max(3, r // 2))
    ours = per_call(lambda: entropy_rows(batch), max(3, r // 2))
    theirs = per_call(lambda: numpy_rows(batch), max(3, r // 2))
    gigabytes = batch.nbytes / 1e9
    for label, seconds in (("1 thread", single), (f"{os.cpu_count()} threads", ours)):
        row = f"batch 1e6 x 16, {label}"
        print(
            f"{row:<30}{seconds * 1e3:>9.1f}ms{theirs * 1e3:>9.1f}ms{'':>11}"
            f"{theirs / seconds:>7.1f}x"
        )
    print(
        f"{'':<30}{1e6 / ours / 1e6:>7.1f}M rows/s, {gigabytes / ours:.2f} GB/s (C++); "
        f"{1e6 / theirs / 1e6:.1f}M rows/s, {gigabytes / theirs:.2f} GB/s (numpy)"
    )
    dataset = ProbDistributionDataset(10_000, 16, 1.0, 0)
    ours = per_call(lambda: dataset[123], r)
    probdist.entropy = lambda p, **_: numpy_entropy(p)  # type: ignore[assignment]
    theirs = per_call(lambda: dataset[123], r)
    probdist.entropy = entropy
    print(
        f"{'Dataset __getitem__ (dim 16)':<30}{ours * 1e6:>9.2f}us{theirs * 1e6:>9.2f}us{'':>11}"
        f"{theirs / ours:>7.1f}x"
    )
    print("goals: one vector of 10 >= 3x numpy; batch >= 1.5x numpy vectorised")


if __name__ == "__main__":
    main()
