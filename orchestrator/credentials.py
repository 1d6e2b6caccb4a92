"""Secrets hpo generates and keeps, and URLs that are safe to print.

The managed database's password is generated once per instance and kept in the user's config
folder with mode 0600; it is never written in code, printed or logged.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

__all__ = ["load_or_create_password", "redact_url"]

_PASSWORD_BYTES = 24
_URL_PASSWORD = re.compile(r"(?P<head>[a-z0-9+.-]+://[^:/@\s]+:)(?P<password>[^@\s]+)(?P<tail>@)")


def load_or_create_password(path: Path) -> str:
    """The password stored at ``path``, made (URL-safe, 192 bits) and stored 0600 if absent."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(_PASSWORD_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as f:
        f.write(password + "\n")
    return password


def redact_url(url: str) -> str:
    """``postgresql://hpo:secret@host/db`` -> ``postgresql://hpo:***@host/db``."""
    return _URL_PASSWORD.sub(r"\g<head>***\g<tail>", url)
