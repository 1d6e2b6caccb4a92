"""The trainer image, built by hpo's own code on the real engine, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import docker
import pytest

from orchestrator import __version__, images
from orchestrator.images._trainer import BUILDER_STAGE_LABEL
from orchestrator.settings import TRAINER_IMAGE
from tests.integration.conftest import (
    HPO,
    REPO,
    BuiltImage,
    Database,
    Report,
    build_user_image,
    trainer_tag,
)

pytestmark = pytest.mark.integration


def _run(client: docker.DockerClient, command: list[str]) -> str:
    output = client.containers.run(
        trainer_tag(), command, remove=True, network_mode="none", stderr=False
    )
    return output.decode()


def test_builds_from_clean_cache_without_network(trainer_image: BuiltImage) -> None:
    assert trainer_image.build_kwargs["network_mode"] == "none"
    if os.environ.get("HPO_TEST_IMAGE_CACHE") == "1":
        pytest.skip("HPO_TEST_IMAGE_CACHE=1: this session built with the layer cache")
    assert trainer_image.build_kwargs["nocache"] is True


def test_the_replaced_image_is_removed_unless_in_use(
    docker_client: docker.DockerClient, trainer_image: BuiltImage
) -> None:
    replaced = trainer_image.replaced
    if replaced is None or replaced == trainer_image.image_id:
        pytest.skip("no earlier hpo-trainer:latest was replaced by this session's build")
    if docker_client.containers.list(all=True, ignore_removed=True, filters={"ancestor": replaced}):
        pytest.skip("a container still uses the replaced image, so it is rightly kept")
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(replaced)


def test_only_the_newest_builder_stage_is_kept(
    docker_client: docker.DockerClient, trainer_image: BuiltImage
) -> None:
    # The classic builder leaves the venv stage as an untagged ~2 GB image per clean build; the
    # newest stays as the next build's cache (test_rebuild_after_touching_one_py_file uses it).
    filters = {"dangling": True, "label": BUILDER_STAGE_LABEL}
    assert len(docker_client.images.list(filters=filters)) == 1


def test_image_is_labelled_and_runs_as_non_root(
    docker_client: docker.DockerClient, trainer_image: BuiltImage
) -> None:
    image = docker_client.images.get(trainer_tag())
    assert image.id == trainer_image.image_id
    labels = image.labels
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    assert labels[images.SOURCE_LABEL] == images.source_digest(REPO)  # so no launch rebuilds it
    assert _run(docker_client, ["id", "-u"]).strip() not in ("", "0")


def test_container_imports_the_stack(
    docker_client: docker.DockerClient, trainer_image: BuiltImage
) -> None:
    code = (
        "import torch, lightning, optuna, wandb, psycopg, trainer, orchestrator; "
        "print(torch.__version__)"
    )
    assert _run(docker_client, ["python", "-c", code]).strip().startswith("2.13.0")


def test_container_trains_one_epoch(
    docker_client: docker.DockerClient, trainer_image: BuiltImage
) -> None:
    command = ["python", "-m", "trainer.train", "experiment=digits_mlp"]
    command += ["trainer.max_epochs=1", "threads=1"]
    metrics = json.loads(_run(docker_client, command).strip().splitlines()[-1])
    assert metrics["epochs"] == 1
    assert 0.0 <= metrics["val_acc"] <= 1.0


def test_rebuild_after_touching_one_py_file(
    docker_client: docker.DockerClient, trainer_image: BuiltImage, tmp_path: Path, report: Report
) -> None:
    source = tmp_path / "src"
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "wheelhouse", source / "wheelhouse", copy_function=_link)
    if (REPO / "build").is_dir():  # a working tree keeps its compiled objects: not rebuilt
        shutil.copytree(REPO / "build", source / "build")
    with (source / "trainer_image" / "trainer" / "fit.py").open("a") as f:
        f.write("\n# touched by test_rebuild_after_touching_one_py_file\n")
    tag = f"hpo-trainer-rebuild-test:{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    images.build_hpo_wheel(source, log=lambda line: None)  # what `hpo image build` does first
    image_id = images.build_image(
        docker_client,
        context=source,
        dockerfile="trainer_image/Dockerfile",
        tag=tag,
        buildargs=trainer_image.build_kwargs["buildargs"],
        network_mode="none",
        log=lambda line: None,
    )
    seconds = time.monotonic() - started
    docker_client.images.remove(tag, force=True)
    report(f"trainer image: rebuild after touching one .py file {seconds:.1f} s (goal < 15 s)")
    assert image_id != trainer_image.image_id


def _link(source: str, destination: str) -> None:
    Path(destination).hardlink_to(source)


def test_a_launch_rebuilds_a_trainer_image_older_than_its_source(
    docker_client: docker.DockerClient,
    trainer_image: BuiltImage,
    database: Database,
    tmp_path: Path,
) -> None:
    # Last in this file: the trainer image is briefly one that claims older sources.
    (tmp_path / "Dockerfile").write_text(
        f"FROM {trainer_tag()}\nLABEL {images.SOURCE_LABEL}=older\n"
    )
    stale = next(build_user_image(docker_client, tmp_path))
    docker_client.api.tag(stale, TRAINER_IMAGE, "latest")
    launch = [HPO, "launch", "--workers", "1", "--trials", "1", "--runs-dir", str(tmp_path)]
    launch += ["--tracking", "none", "--no-report", "trainer.max_epochs=1"]
    try:
        user = subprocess.run(
            [*launch, "--study", "stale-user", "--image", stale],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert user.returncode == 0, user.stdout + user.stderr  # a warning, not a refusal
        assert f"warning: `{stale}` was built FROM an older hpo-trainer" in user.stderr
        ours = subprocess.run(
            [*launch, "--study", "stale-ours"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert ours.returncode == 0, ours.stdout + ours.stderr
        rebuilt = docker_client.images.get(trainer_tag())
        assert rebuilt.labels[images.SOURCE_LABEL] == images.source_digest(REPO)
    finally:
        if docker_client.images.get(trainer_tag()).labels.get(images.SOURCE_LABEL) == "older":
            docker_client.api.tag(trainer_image.image_id, TRAINER_IMAGE, "latest")
        docker_client.images.remove(stale, force=True)
