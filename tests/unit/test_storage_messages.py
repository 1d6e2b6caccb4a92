"""How storage URLs appear in messages: where the database is, never its password."""

from __future__ import annotations

import re

import pytest
from trainer import storage


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://hpo:secret@db:6543/hpo", "db:6543/hpo"),
        ("postgresql+psycopg://hpo@/hpo", "localhost:5432/hpo"),
        ("sqlite:///studies.db", "sqlite:///studies.db"),
        ("mysql://me:secret@db/hpo", "mysql://me:***@db/hpo"),
    ],
)
def test_messages_name_the_database_but_never_its_password(url: str, expected: str) -> None:
    assert storage.where(url) == expected


def test_a_url_that_is_not_postgres_is_refused_as_given() -> None:
    with pytest.raises(storage.ConfigError, match=re.escape("got sqlite:///studies.db; SQLite")):
        storage.open_storage("sqlite:///studies.db", "s")
