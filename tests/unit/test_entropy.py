"""The C++ entropy kernel against scipy, its refusals, and the Dataset that calls it per item."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import entropy as scipy_entropy
from trainer import experiment, fit
from trainer.data.probdist import ProbDistDataModule, ProbDistributionDataset
from trainer.entropy import entropy, entropy_rows

from tests.conftest import ComposeFn

RTOL = 1e-6


def _close(ours: float, theirs: float, rtol: float = RTOL) -> bool:
    return bool(np.isclose(ours, theirs, rtol=rtol, atol=1e-12))


def _dirichlet(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(n))


@pytest.mark.parametrize(
    "p",
    [
        np.array([1.0]),  # length 1
        np.eye(5)[2],  # one-hot
        np.full(8, 1 / 8),  # uniform
        np.array([0.5, 0.0, 0.25, 0.0, 0.25]),  # zeros: 0 * log 0 = 0
        _dirichlet(10),
        _dirichlet(1_000_000),
    ],
    ids=["length-1", "one-hot", "uniform", "zeros", "dirichlet-10", "length-1e6"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_scipy_on_edge_cases(p: np.ndarray, dtype: type) -> None:
    q = p.astype(dtype)
    tol = 1e-6 if dtype is np.float64 else 1e-4  # float32 vectors sum to 1 only so closely
    assert _close(entropy(q, tol=tol), scipy_entropy(q.astype(np.float64)))
    assert _close(entropy(q, base=2, tol=tol), scipy_entropy(q.astype(np.float64), base=2))


def test_rows_match_scipy_whatever_the_strides() -> None:
    rows = np.random.default_rng(1).dirichlet(np.ones(7), size=50)
    expected = scipy_entropy(rows, axis=1)
    assert np.allclose(entropy_rows(rows), expected, rtol=RTOL)
    assert np.allclose(entropy_rows(np.asfortranarray(rows)), expected, rtol=RTOL)
    assert np.allclose(entropy_rows(rows[::3]), expected[::3], rtol=RTOL)  # every third row
    interleaved = np.zeros((50, 14))
    interleaved[:, ::2] = rows  # each row's values two elements apart
    assert np.allclose(entropy_rows(interleaved[:, ::2]), expected, rtol=RTOL)
    assert _close(entropy(interleaved[3, ::2]), expected[3])
    assert np.allclose(entropy_rows(rows.astype(np.float32), tol=1e-5), expected, rtol=1e-5)


def test_no_copy_is_made_of_a_large_view() -> None:
    big = np.random.default_rng(2).dirichlet(np.ones(16), size=100_000)
    view = big[:, :8]  # rows sum to less than 1: normalised, read in place
    expected = scipy_entropy(view, axis=1)
    assert np.allclose(entropy_rows(view, normalize=True), expected, rtol=RTOL)


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        np.float64,
        st.integers(1, 64),
        elements=st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    ).filter(lambda a: a.sum() > 0)
)
def test_matches_scipy_on_any_nonnegative_vector(values: np.ndarray) -> None:
    assert _close(entropy(values, normalize=True), scipy_entropy(values), rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: entropy(np.array([])), "empty distribution"),
        (lambda: entropy(np.array([0.5, -0.1, 0.6])), "index 1: negative value -0.1"),
        (lambda: entropy(np.array([0.5, np.nan])), "index 1: NaN"),
        (lambda: entropy(np.array([np.inf, 0.5])), "index 0: infinite value"),
        (lambda: entropy(np.array([0.5, 0.4])), "sums to 0.9, not 1 within tol=1e-06"),
        (lambda: entropy(np.zeros(3), normalize=True), "all zeros"),
        (lambda: entropy(np.array([1.0]), base=1), "base must be positive, finite and not 1"),
        (lambda: entropy(np.ones((2, 2)) / 4), "expected a 1-D array, got 2-D"),
        (lambda: entropy_rows(np.array([[0.5, 0.5], [0.2, 0.3]])), "row 1: sums to 0.5"),
        (lambda: entropy_rows(np.array([[0.5, 0.5], [0.5, -0.5]])), "row 1, index 1: negative"),
        (lambda: entropy_rows(np.ones((3, 0))), "row 0: empty distribution"),
        (lambda: entropy_rows(np.ones(3)), "expected a 2-D array, got 1-D"),
    ],
)
def test_bad_input_raises_value_error_naming_where(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()  # type: ignore[operator]


def test_other_dtypes_are_converted() -> None:
    assert _close(entropy(np.array([1, 1]), normalize=True), np.log(2))
    assert _close(entropy([0.5, 0.5]), np.log(2))


def test_dataset_items_are_the_same_for_the_same_index() -> None:
    first, again = (
        ProbDistributionDataset(100, 16, 1.0, 7),
        ProbDistributionDataset(100, 16, 1.0, 7),
    )
    probs, target = first[5]
    assert torch.equal(probs, again[5][0]) and torch.equal(target, again[5][1])
    assert not torch.equal(probs, first[6][0])
    assert probs.dtype == torch.float32 and probs.shape == (16,)
    assert target.item() == pytest.approx(scipy_entropy(probs.double().numpy()), rel=1e-5)
    with pytest.raises(IndexError):
        first[100]


def test_splits_are_disjoint_and_cover_the_items() -> None:
    data = ProbDistDataModule(
        size=1000,
        dim=8,
        concentration=0.5,
        val_fraction=0.1,
        test_fraction=0.2,
        batch_size=32,
        seed=0,
    )
    ranges = data.ranges
    assert [len(ranges[s]) for s in ("train", "val", "test")] == [700, 100, 200]
    assert set(ranges["train"]).isdisjoint(ranges["val"]) and set(ranges["val"]).isdisjoint(
        ranges["test"]
    )


@pytest.mark.slow
def test_default_entropy_experiment_learns_to_within_10_percent(compose_in: ComposeFn) -> None:
    cfg = compose_in("entropy")
    metrics = fit.run(cfg)
    targets = torch.stack([t for _, t in ProbDistributionDataset(2000, cfg.data.dim, 1.0, 0)])
    assert metrics["val_mae"] < 0.1 * targets.mean().item()


def test_entropy_experiment_composes_with_its_search_space() -> None:
    cfg = experiment.compose("entropy")
    assert cfg.model.input_dim == cfg.data.dim
    assert cfg.optimized_metric == "val_mae" and cfg.direction == "minimize"


def test_threads_split_rows_without_changing_results_or_errors() -> None:
    rows = np.random.default_rng(3).dirichlet(np.ones(4), size=100_000)
    assert np.array_equal(entropy_rows(rows, threads=1), entropy_rows(rows, threads=4))
    rows[90_000, 2] = -1.0  # in the last of four chunks
    with pytest.raises(ValueError, match="row 90000, index 2: negative value -1"):
        entropy_rows(rows, threads=4)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        entropy_rows(rows, threads=0)
