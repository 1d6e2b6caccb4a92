"""``python -m orchestrator.stack_secret PATH``: the compose stack's database password, made once.

Run by the one-shot ``secrets`` service of ``compose.yaml`` before Postgres starts: a fresh
project gets a random password in its ``secrets`` volume, never in a committed file, an
environment variable or ``docker inspect``; later runs keep it; ``docker compose down -v`` deletes
it together with the data it protects.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

PASSWORD_BYTES = 24
READABLE_BY_THE_STACK = 0o444  # Postgres (uid 999 or 100) and hpo (uid 10001) read it; the
# volume is mounted only into this project's services


def ensure_password(path: Path) -> bool:
    """Write a random password to ``path`` unless one is there; True when one was made."""
    made = not path.exists() or not path.read_text().strip()
    if made:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(PASSWORD_BYTES))
    path.chmod(READABLE_BY_THE_STACK)
    return made


def main(argv: list[str]) -> int:
    """Entry point: exactly one argument, the password file."""
    if len(argv) != 1:
        print("usage: python -m orchestrator.stack_secret PATH", file=sys.stderr)
        return 2
    made = ensure_password(Path(argv[0]))
    print(f"{'made' if made else 'kept'} the database password in {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
