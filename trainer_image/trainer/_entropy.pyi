# Type stubs of the C++ extension built from csrc/entropy.cpp.
from __future__ import annotations

import numpy as np
import numpy.typing as npt

def entropy(
    p: npt.ArrayLike, *, base: float | None = None, normalize: bool = False, tol: float = 1e-6
) -> float: ...
def entropy_rows(
    a: npt.ArrayLike,
    *,
    base: float | None = None,
    normalize: bool = False,
    tol: float = 1e-6,
    threads: int | None = None,
) -> npt.NDArray[np.float64]: ...
