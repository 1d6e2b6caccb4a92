"""Trainer image numbers, measured in one run on this engine: size, cold build, warm rebuild,
container start-to-import.

    python bench/images.py [--repeats 3] [--skip-cold]

The cold build uses hpo's own build path with no layer cache (wheelhouse and base image already
made); the warm rebuild builds a copy of the tree with one .py file changed; start-to-import is
``docker run`` of ``import torch, lightning, optuna, wandb, trainer`` beside ``docker run true``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import docker

from orchestrator import engine, images
from orchestrator.settings import PYTHON_BASE_IMAGE, TRAINER_IMAGE

REPO = Path(__file__).resolve().parents[1]
IMPORTS = "import torch, lightning, optuna, wandb, trainer"
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "wheelhouse", "outputs", "hpo-runs", "*_cache", "__pycache__"
)


def cold_build(client: docker.DockerClient) -> float:
    started = time.monotonic()
    images.build_trainer_image(
        client, REPO, base=PYTHON_BASE_IMAGE, log=lambda _: None, nocache=True
    )
    return time.monotonic() - started


def warm_rebuild(client: docker.DockerClient) -> float:
    labels = client.images.get(f"{TRAINER_IMAGE}:latest").attrs["Config"]["Labels"]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "src"
        shutil.copytree(REPO, tree, ignore=SKIP)
        shutil.copytree(REPO / "wheelhouse", tree / "wheelhouse", copy_function=_link)
        with (tree / "trainer_image" / "trainer" / "fit.py").open("a") as f:
            f.write(f"\n# bench edit {time.time()}\n")
        started = time.monotonic()
        images.build_image(
            client,
            context=tree,
            dockerfile="trainer_image/Dockerfile",
            tag="hpo-trainer-bench:rebuild",
            buildargs={
                "BASE_IMAGE": _base_of(client),
                "VERSION": labels["org.opencontainers.image.version"],
            },
            network_mode="none",
            log=lambda _: None,
        )
        seconds = time.monotonic() - started
    return seconds


def run_seconds(client: docker.DockerClient, command: list[str]) -> float:
    started = time.monotonic()
    client.containers.run(f"{TRAINER_IMAGE}:latest", command, remove=True, network_mode="none")
    return time.monotonic() - started


def _base_of(client: docker.DockerClient) -> str:
    try:
        client.images.get(PYTHON_BASE_IMAGE)
        return PYTHON_BASE_IMAGE
    except docker.errors.ImageNotFound:
        return "hpo-base:bookworm"


def _link(source: str, destination: str) -> None:
    Path(destination).hardlink_to(source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-cold", action="store_true", help="skip the clean-cache build")
    args = parser.parse_args()
    client = engine.connect()
    cold = None if args.skip_cold else cold_build(client)
    # Kept between repeats: the first rebuild may miss `COPY --from=builder` when the classic
    # builder picks an older cached builder stage (after --no-cache builds); later ones show the
    # everyday loop. Every repeat is printed.
    rebuilds = [warm_rebuild(client) for _ in range(args.repeats)]
    client.images.remove("hpo-trainer-bench:rebuild", force=True)
    warm = statistics.median(rebuilds)
    bare = [run_seconds(client, ["true"]) for _ in range(args.repeats)]
    imports = [run_seconds(client, ["python", "-c", IMPORTS]) for _ in range(args.repeats)]
    size = client.images.get(f"{TRAINER_IMAGE}:latest").attrs["Size"] / 1e9
    print(f"trainer image, median of {args.repeats} where repeated")
    print(f"{'image size':<34}{size:>8.2f} GB")
    print(
        f"{'cold build (no cache)':<34}{cold:>8.1f} s"
        if cold
        else f"{'cold build':<34}{'skipped':>8}"
    )
    each = ", ".join(f"{r:.1f}" for r in rebuilds)
    print(f"{'rebuild after one .py change':<34}{warm:>8.1f} s   (each: {each}; goal < 15 s)")
    print(f"{'docker run true':<34}{statistics.median(bare):>8.2f} s")
    print(f"{'docker run + imports':<34}{statistics.median(imports):>8.2f} s")
    difference = statistics.median(imports) - statistics.median(bare)
    print(f"{'imports alone (difference)':<34}{difference:>8.2f} s")


if __name__ == "__main__":
    main()
