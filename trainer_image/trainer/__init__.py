"""Everything that runs inside a trainer container: composition, data, models, training.

Importing this package is cheap (no torch): the host imports ``trainer.experiment`` to compose and
validate configs, while torch is imported only by the modules that train.
"""

from __future__ import annotations

__all__ = ["__version__"]

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("hpo")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
