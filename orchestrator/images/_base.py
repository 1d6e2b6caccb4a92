"""The base image of the trainer and Postgres images: pulled, or bootstrapped from Debian.

Where a registry answers, the base is pulled; where none does, it is made from Debian's archive
with debootstrap and ``docker import``.

The bootstrapped image gets a project-owned name (``hpo-base:bookworm``), never an official one,
so nobody mistakes it for ``python:...``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import docker

from orchestrator.engine import translated
from orchestrator.errors import BackendError
from orchestrator.images._build import BuildLog, run_streamed
from orchestrator.images._engine_images import image_exists, pull
from orchestrator.settings import OFFLINE_BASE_IMAGE

__all__ = ["ensure_base_image"]

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "passwd")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
_IMPORT_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
]


def ensure_base_image(client: docker.DockerClient, wanted: str, log: BuildLog) -> str:
    """Return an image to build FROM: ``wanted`` if present or pullable, else the offline base.

    Raises:
        BackendError: Neither could be had; the message gives both reasons.
    """
    if image_exists(client, wanted):
        return wanted
    pull_failure = pull(client, wanted, log)
    if pull_failure is None:
        return wanted
    if image_exists(client, OFFLINE_BASE_IMAGE):
        log(f"{wanted} cannot be pulled; using the offline base {OFFLINE_BASE_IMAGE}")
        return OFFLINE_BASE_IMAGE
    log(f"{wanted} cannot be pulled; bootstrapping {OFFLINE_BASE_IMAGE} from Debian ({SUITE})")
    try:
        _bootstrap(client, log)
    except BackendError as e:
        raise BackendError(
            f"no base image: pulling `{wanted}` failed ({pull_failure}); "
            f"bootstrapping `{OFFLINE_BASE_IMAGE}` failed ({e})."
        ) from e
    return OFFLINE_BASE_IMAGE


def _bootstrap(client: docker.DockerClient, log: BuildLog) -> None:
    if shutil.which("debootstrap") is None:
        raise BackendError("debootstrap is not installed: `sudo apt-get install debootstrap`")
    if os.geteuid() != 0:
        raise BackendError("debootstrap must run as root: run `sudo hpo image build` once")
    with tempfile.TemporaryDirectory(prefix="hpo-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        command = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
        command += [SUITE, str(rootfs), apt_mirror()]
        _run(command, log)
        _run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], log)
        repository, tag = OFFLINE_BASE_IMAGE.split(":")
        log(f"importing {OFFLINE_BASE_IMAGE}")
        with translated(f"importing {OFFLINE_BASE_IMAGE}"):
            client.api.import_image_from_file(
                str(tarball), repository=repository, tag=tag, changes=_IMPORT_CHANGES
            )


def apt_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian archive this machine's apt uses (the only one reachable on closed networks)."""
    uris: list[str] = []
    for path in sorted(sources.glob("sources.list.d/*.sources")):
        uris += re.findall(r"^URIs:\s*(\S+)", path.read_text(), re.MULTILINE)
    legacy = sources / "sources.list"
    if legacy.is_file():
        uris += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", legacy.read_text(), re.MULTILINE)
    debian = [uri for uri in uris if "debian" in uri and "security" not in uri]
    return debian[0] if debian else DEFAULT_MIRROR


def _run(command: list[str], log: BuildLog) -> None:
    code, last = run_streamed(command, log)
    if code != 0:
        raise BackendError(f"`{command[0]}` exited {code}: {last}")
