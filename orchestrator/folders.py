"""Folders the ``hpo`` command writes to, checked before any work that would end by writing.

A folder that cannot be made or written is a user's choice of path, not a bug: one line naming
the path, the system's reason and the option that chose it, rather than a traceback at the end
of a study or of a long retrain.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import ConfigError

__all__ = ["writable_folder"]


def writable_folder(path: Path, option: str) -> Path:
    """Make ``path`` (and its parents) if need be, and check that files can be written in it.

    Returns:
        ``path``, which now exists.

    Raises:
        ConfigError: It cannot be made, is not a folder, or is not writable.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot make the folder `{path}` ({e.strerror}); pass another `{option}`."
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write in `{path}` (permission denied); pass another `{option}`.")
    return path
