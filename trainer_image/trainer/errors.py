"""The one root of every error hpo raises on purpose.

It lives here, in the lightest module of the container-side package, so that both the trainer and
the host-side orchestrator can derive from it without the host importing torch.
"""

from __future__ import annotations

__all__ = ["ConfigError", "HpoError"]


class HpoError(Exception):
    """Root of the errors hpo raises on purpose: catch this to catch them all."""


class ConfigError(HpoError, ValueError):
    """A user's configuration is wrong; the message names the key and says how to fix it."""
