"""The wheelhouse: every Python package the trainer image needs, as wheels made on the host.

pip inside a container cannot reach PyPI on networks that intercept TLS, and a build without
network cannot reach it at all; so packages are fetched on the host, for the image's Python
(CPython 3.11, manylinux x86_64), and installed in the build with ``--no-index``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import sys
import tomllib
from pathlib import Path

from orchestrator.errors import BackendError
from orchestrator.images._build import BuildLog, run_streamed

__all__ = ["build_hpo_wheel", "ensure_wheelhouse", "requirements"]

IMAGE_PYTHON = "3.11"
_PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux_2_5_x86_64",
    "manylinux1_x86_64",
)
_IMAGE_PLATFORM = (
    "--only-binary=:all:",
    *("--python-version", IMAGE_PYTHON, "--implementation", "cp", "--abi", "cp311"),
    *(arg for tag in _PLATFORMS for arg in ("--platform", tag)),
)
_STAMP = ".requirements.sha256"
_FOREIGN_HOST_HINT = (
    "; a requirement may have no wheel for the image: build the wheelhouse on Linux x86_64 "
    f"with Python {IMAGE_PYTHON}, where pip can build wheels from sdists"
)


def requirements(root: Path) -> list[str]:
    """What the image installs: hpo's own dependencies, its ``trainer`` extra, its build backend."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    project = pyproject["project"]
    return [
        *project["dependencies"],
        *project["optional-dependencies"]["trainer"],
        *pyproject["build-system"]["requires"],
    ]


def ensure_wheelhouse(root: Path, log: BuildLog) -> Path:
    """Fill ``<root>/wheelhouse`` unless it already holds these exact requirements.

    Returns:
        The wheelhouse folder, holding ``requirements.txt`` and the wheels.

    Raises:
        BackendError: pip could not get a wheel for some requirement.
    """
    wheelhouse = root / "wheelhouse"
    wanted = "\n".join(requirements(root)) + "\n"
    digest = hashlib.sha256(wanted.encode()).hexdigest()
    stamp = wheelhouse / _STAMP
    if stamp.is_file() and stamp.read_text().strip() == digest:
        log(f"wheelhouse up to date ({len(list(wheelhouse.glob('*.whl')))} wheels)")
        return wheelhouse
    wheelhouse.mkdir(exist_ok=True)
    listing = wheelhouse / "requirements.txt"
    listing.write_text(wanted)
    native = _host_matches_image()
    command = _wheel(listing, wheelhouse) if native else _download(listing, wheelhouse)
    if run_streamed(command, log)[0] != 0:
        hint = "" if native else _FOREIGN_HOST_HINT
        raise BackendError(f"pip could not fill the wheelhouse (see the lines above){hint}.")
    stamp.write_text(digest + "\n")
    return wheelhouse


def _wheel(listing: Path, wheelhouse: Path) -> list[str]:
    """Same OS, machine and Python as the image: pip also turns sdists into wheels here.

    (hydra-core needs antlr4-python3-runtime, which is published only as an sdist.)
    """
    return [*_pip("wheel"), "--wheel-dir", str(wheelhouse), "-r", str(listing)]


def _download(listing: Path, wheelhouse: Path) -> list[str]:
    """Any other host: wheels for the image's platform only, as pip cannot build for it."""
    return [*_pip("download"), "--dest", str(wheelhouse), *_IMAGE_PLATFORM, "-r", str(listing)]


def _pip(command: str) -> list[str]:
    return [sys.executable, "-m", "pip", command, "--quiet", "--disable-pip-version-check"]


def _host_matches_image() -> bool:
    """Wheels built here fit the image only on the same OS, machine and Python minor."""
    same_python = f"{sys.version_info.major}.{sys.version_info.minor}" == IMAGE_PYTHON
    return sys.platform == "linux" and platform.machine() == "x86_64" and same_python


def build_hpo_wheel(root: Path, log: BuildLog) -> Path:
    """Hpo's own wheel, its C++ extension compiled here, in ``<root>/wheelhouse-hpo``.

    The image has no compiler and its build no network, so the extension is compiled on the
    host, for the image's Python. Kept apart from the wheelhouse, so that a code change does not
    invalidate the dependency layer.

    Raises:
        BackendError: This host cannot compile for the image, or the build failed.
    """
    if not _host_matches_image():
        raise BackendError(
            "the trainer image needs hpo's C++ extension compiled for Linux x86_64 and Python "
            f"{IMAGE_PYTHON}: build the image on such a host."
        )
    out = root / "wheelhouse-hpo"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    command = [*_pip("wheel"), "--no-deps", "--wheel-dir", str(out), str(root)]
    if importlib.util.find_spec("pybind11") and importlib.util.find_spec("setuptools"):
        command.append("--no-build-isolation")  # the build tools are here: no download, faster
    if run_streamed(command, log)[0] != 0:
        raise BackendError("pip could not build hpo's wheel (see the lines above).")
    return out
