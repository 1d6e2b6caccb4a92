"""The host side of hpo: the ``hpo`` command, studies, backends, progress and reports.

It never imports torch: ``pip install hpo`` (no extras) is enough to drive workers in containers.
"""

from __future__ import annotations

from trainer import __version__

__all__ = ["__version__"]
