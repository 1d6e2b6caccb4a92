"""The GPU check asks the engine with a throw-away container, and leaves none behind."""

from __future__ import annotations

from typing import Any

import pytest
from docker.errors import APIError

from orchestrator.backends import check_gpu_access
from orchestrator.errors import ConfigError

NO_TOOLKIT = 'could not select device driver "" with capabilities: [[gpu]]'


class FakeContainer:
    def __init__(self, start_error: str | None) -> None:
        self.start_error = start_error
        self.started = self.removed = False

    def start(self) -> None:
        if self.start_error is not None:
            raise APIError("500 Server Error", explanation=self.start_error)
        self.started = True

    def remove(self, force: bool = False) -> None:
        self.removed = force


class FakeContainers:
    def __init__(self, start_error: str | None) -> None:
        self.made = FakeContainer(start_error)
        self.created_with: dict[str, Any] = {}

    def create(self, image: str, **kwargs: Any) -> FakeContainer:
        self.created_with = {"image": image, **kwargs}
        return self.made


class FakeClient:
    def __init__(self, start_error: str | None = None) -> None:
        self.containers = FakeContainers(start_error)


def test_a_container_that_gets_its_gpus_passes_and_is_removed() -> None:
    client = FakeClient()
    check_gpu_access(client, "img:1", ["1"], {"hpo.launch": "abc"})  # type: ignore[arg-type]
    made = client.containers.created_with
    (request,) = made["device_requests"]
    assert request["DeviceIDs"] == ["1"] and request["Capabilities"] == [["gpu"]]
    assert made["image"] == "img:1" and made["entrypoint"] == ["true"]
    assert made["labels"]["hpo.launch"] == "abc"  # `hpo gc` finds an interrupted one
    assert made["network_mode"] == "none"
    assert client.containers.made.started and client.containers.made.removed


@pytest.mark.parametrize(
    ("engine_says", "expected"),
    [
        (NO_TOOLKIT, "cannot give a container a GPU (could not select device driver"),
        ("invalid device id 3", "a container with GPU 3 did not start: invalid device id 3."),
    ],
)
def test_a_container_the_engine_cannot_give_gpus_is_one_line_and_removed(
    engine_says: str, expected: str
) -> None:
    client = FakeClient(start_error=engine_says)
    with pytest.raises(ConfigError) as refused:
        check_gpu_access(client, "img:1", ["3"], {})  # type: ignore[arg-type]
    assert str(refused.value).startswith("`--gpus-per-worker`: ")
    assert expected in str(refused.value)
    assert client.containers.made.removed
