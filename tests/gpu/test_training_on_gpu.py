"""On a machine with a GPU: a worker's trials train on the GPU it sees, and on the CPU without one.

The default trainer config says ``accelerator: auto``; a docker worker sees the GPUs of
``--gpus-per-worker`` (device requests), a local one those its ``CUDA_VISIBLE_DEVICES`` names.
Skipped where torch sees no GPU (CI has none); `make test-gpu` runs them on one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from trainer import fit
from trainer.objective import TrialRunner
from trainer.spec import Budget, Resilience, Tracking
from trainer.storage import quiet_optuna

from orchestrator.backends import LocalBackend, WorkerSpec, host_gpu_ids, visible_gpus
from orchestrator.study import build_spec
from tests.conftest import ComposeFn

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU that torch can use"),
]

# One fit in a fresh process, printing where the model trained: the process a worker is.
_CHILD = """
import json, tempfile
from lightning.pytorch.callbacks import Callback
from trainer import experiment, fit

class Probe(Callback):
    def on_train_start(self, trainer, pl_module):
        self.device = str(next(pl_module.parameters()).device)

probe = Probe()
cfg = experiment.compose("digits_mlp", [f"paths.output_dir={tempfile.mkdtemp()}",
                                        "trainer.max_epochs=2"])
fit.run(cfg, [probe])
print(json.dumps({"device": probe.device}))
"""


class DeviceProbe(Callback):
    """Where the model's parameters and the first training batch are."""

    def __init__(self) -> None:
        self.devices: set[str] = set()

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == 0:
            self.devices |= {str(next(pl_module.parameters()).device), str(batch[0].device)}


def test_the_driver_counts_the_gpus_torch_sees() -> None:
    # `--gpus-per-worker` is checked and dealt from /proc/driver/nvidia/gpus.
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        pytest.skip("a share of the GPUs is set: torch counts that, the driver all of them")
    assert visible_gpus() == torch.cuda.device_count()
    assert host_gpu_ids(os.environ) == [str(i) for i in range(torch.cuda.device_count())]


@pytest.mark.parametrize(("experiment", "minimum"), [("digits_mlp", 0.95), ("entropy", None)])
def test_a_fit_trains_on_the_gpu_by_default(
    compose_in: ComposeFn, experiment: str, minimum: float | None
) -> None:
    cfg = compose_in(experiment)
    assert cfg.trainer.accelerator == "auto"
    probe = DeviceProbe()
    metrics = fit.run(cfg, [probe])
    assert probe.devices == {"cuda:0"}
    if minimum is not None:
        assert metrics["val_acc"] >= minimum


def test_accelerator_cpu_keeps_a_fit_off_the_gpu(compose_in: ComposeFn) -> None:
    probe = DeviceProbe()
    fit.run(compose_in(overrides=("trainer.accelerator=cpu", "trainer.max_epochs=2")), [probe])
    assert probe.devices == {"cpu"}


def test_a_studys_trials_train_on_the_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quiet_optuna()
    spec = build_spec(
        "digits_mlp",
        ["trainer.max_epochs=5"],
        budget=Budget(4),
        sampler="random",
        pruner="none",
        seed=0,
        resilience=Resilience(),
        tracking=Tracking(backend="none"),
    )
    probes: list[DeviceProbe] = []
    run = fit.run

    def probed(cfg: Any, callbacks: Any = (), loggers: Any = (), checkpoint: Any = None) -> Any:
        probes.append(DeviceProbe())
        return run(cfg, [*callbacks, probes[-1]], loggers, checkpoint)

    monkeypatch.setattr(fit, "run", probed)  # the objective calls `fit.run` through the module
    study = optuna.create_study(direction="maximize")
    study.optimize(TrialRunner(spec, "gpu", tmp_path, threads=1), n_trials=4)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert [p.devices for p in probes] == [{"cuda:0"}] * 4


@pytest.mark.parametrize(("per_worker", "expected"), [(0, "cpu"), (1, "cuda:0")])
def test_a_local_worker_trains_where_its_gpus_were_dealt(
    per_worker: int, expected: str, tmp_path: Path
) -> None:
    backend = LocalBackend(per_worker, host_gpu_ids(os.environ))
    worker = WorkerSpec("gpu", 0, "postgresql://unused", tmp_path)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        env=backend.environment(worker),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert json.loads(child.stdout.splitlines()[-1]) == {"device": expected}
