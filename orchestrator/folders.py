"""Folders the ``hpo`` command writes to, checked before any work that would end by writing.

A folder that cannot be made or written is a user's choice of path, not a bug: one line naming
the path, the system's reason and the option that chose it, rather than a traceback at the end
of a study or of a long retrain.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from orchestrator.errors import ConfigError

__all__ = ["check_writable_folder"]


def check_writable_folder(path: Path, option: str) -> None:
    """Check that ``path`` can be made (if missing) and written in, leaving nothing behind.

    It is made for the check, then what was made is removed again: a command refused later
    (by the database, say) must not leave an empty run folder, and the command that writes
    makes it then.

    Raises:
        ConfigError: It cannot be made, is not a folder, or is not writable.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise ConfigError(
            f"cannot write in `{path}` ({e.strerror}); pass another `{option}`."
        ) from None
    finally:
        for made in missing:
            with contextlib.suppress(OSError):
                made.rmdir()
