"""Errors the host side raises on purpose; ``cli`` turns each into one line and exit code 2."""

from __future__ import annotations

from trainer.errors import ConfigError, HpoError

__all__ = ["ConfigError", "HpoError"]
