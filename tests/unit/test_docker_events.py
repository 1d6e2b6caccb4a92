"""The docker backend's death watch: the engine's ``die`` events wake the launcher."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

from orchestrator.backends._docker_events import DeathWatch


class _FakeEvents:
    """An event stream as docker-py's ``client.events(decode=True)`` gives it."""

    def __init__(self, events: list[dict[str, str]]) -> None:
        self.events = events
        self.delivered = threading.Event()
        self.closed = threading.Event()
        self.filters: dict[str, str] = {}

    def __call__(self, decode: bool, filters: dict[str, str]) -> _FakeEvents:
        self.filters = filters
        return self

    def __iter__(self) -> Iterator[dict[str, str]]:
        yield from self.events
        self.delivered.set()  # the reader asked for more: every event above is queued
        self.closed.wait()  # a live stream blocks until closed

    def close(self) -> None:
        self.closed.set()


def test_death_watch_filters_by_launch_and_takes_every_death_in_one_wake_up() -> None:
    events = _FakeEvents([{"id": "a"}, {"id": "b"}])
    watch = DeathWatch(SimpleNamespace(events=events), "hpo.launch=x")  # type: ignore[arg-type]
    try:
        assert events.filters == {"type": "container", "event": "die", "label": "hpo.launch=x"}
        assert events.delivered.wait(30.0)
        assert watch.wait(30.0)
        assert not watch.wait(0.05)  # both deaths were taken by the first wake-up
    finally:
        watch.close()
    assert events.closed.is_set()
