"""Shannon entropy of probability vectors, computed by hpo's C++ extension (``csrc/``).

``entropy(p)`` takes one vector, ``entropy_rows(a)`` each row of a 2-D array (the GIL is
released meanwhile). float32 and float64 arrays are read in place whatever their strides; other
dtypes are converted. ``base=2`` gives bits; ``normalize=True`` divides by the total instead of
requiring it to be 1 within ``tol``. Empty input, negative, NaN or infinite values raise
``ValueError`` naming the row and the index.
"""

from __future__ import annotations

try:
    from trainer._entropy import entropy, entropy_rows
except ImportError as e:  # pragma: no cover - a source tree used without building it
    raise ImportError(
        "hpo's C++ extension trainer._entropy is not built: install hpo with pip (`pip install "
        "-e .` in a clone; it needs a C++ compiler and Python's headers), or use the trainer "
        f"image, where it is built in. ({e})"
    ) from e

__all__ = ["entropy", "entropy_rows"]
