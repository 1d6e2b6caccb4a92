"""Errors the host side raises on purpose; ``cli`` turns each into one line and exit code 2.

Third-party errors are translated once, where they enter: Docker's in ``engine``, database
errors in the study module.
"""

from __future__ import annotations

from trainer.errors import ConfigError, HpoError
from trainer.storage import StorageError

__all__ = ["BackendError", "ConfigError", "HpoError", "StorageError"]


class BackendError(HpoError):
    """The Docker engine refused or failed: not reachable, an image that will not build or pull."""
