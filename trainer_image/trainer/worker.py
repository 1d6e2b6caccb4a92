"""``python -m trainer.worker --study NAME``: pull trials from a shared study until its budget.

The worker knows only the storage URL and the study name; the study's spec says the rest. Any
number of workers, as processes, containers or pods, share one study: the budget is reserved in
Postgres (``budget``), heartbeats outlive database errors (``heartbeat``), a trial of a dead
worker is failed and retried, and SIGTERM ends the current trial as FAIL, never RUNNING.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import optuna
import torch
from optuna.storages import RDBStorage

from trainer.budget import BudgetGate
from trainer.errors import HpoError
from trainer.fit import lightning_quiet
from trainer.objective import TrialRunner
from trainer.retries import RetryAsNewAttempt
from trainer.samplers import make_pruner, make_sampler
from trainer.spec import SPEC_ATTR, STARTED_ATTR, ExperimentSpec, ready_attr
from trainer.stopping import StopRequest, WorkerStopped
from trainer.storage import open_storage, quiet_optuna, raise_if_deleted
from trainer.tracking import Tracker
from trainer.trial_loop import TrialLoop

log = logging.getLogger("trainer.worker")
# The launcher strips this prefix from a dead worker's last line to say why it ended.
LOG_FORMAT = "%(asctime)s worker-{worker_id} %(levelname)s %(message)s"
READY_WAIT_S = 60.0  # how long a worker with `--launch` waits for its launcher to ready the study
READY_POLL_S = 0.2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Options; the storage URL comes from a file or the environment, never the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m trainer.worker", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument(
        "--storage-file", type=Path, help="file holding the storage URL (else $HPO_STORAGE)"
    )
    parser.add_argument("--worker-id", type=int, default=int(os.environ.get("HPO_WORKER_ID", "0")))
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (this worker's share)"
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=Path(os.environ.get("HPO_RUNS_DIR", "hpo-runs"))
    )
    parser.add_argument(
        "--config-dir", type=Path, default=None, help="a user's Hydra config folder, if any"
    )
    parser.add_argument(
        "--launch", help="the launch this worker belongs to: its trials are labelled with it"
    )
    parser.add_argument(
        "--machine",
        default=socket.gethostname(),
        help="the machine it runs on, to label its trials (default: this host's name; in a "
        "container its id, so the launcher passes the engine's host name)",
    )
    parser.add_argument(
        "--log-name",
        default=os.environ.get("HPO_WORKER_LOG"),
        help="the file its launcher writes its output to (worker-0.2.log for a second launch's "
        "worker 0 beside the first), to label its trials (default: $HPO_WORKER_LOG)",
    )
    parser.add_argument(
        "--wait-ready",
        action="store_true",
        help="first wait until the study is ready for --launch (a first start, not a restart)",
    )
    args = parser.parse_args(argv)
    if args.wait_ready and not args.launch:
        parser.error("--wait-ready needs --launch")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run trials until the budget, the deadline or the failure limit; 0 unless hpo itself fails."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT.format(worker_id=args.worker_id))
    quiet_optuna()
    try:
        url = (
            args.storage_file.read_text().strip()
            if args.storage_file
            else os.environ["HPO_STORAGE"]
        )
    except (OSError, KeyError):
        log.error("no storage URL: pass --storage-file or set HPO_STORAGE")
        return 2
    try:
        # The worker says once which devices it sees, and one line per trial how it ended.
        with lightning_quiet():
            return _work(args, url)
    except HpoError as e:
        log.error("%s", e)
        return 2


def _work(args: argparse.Namespace, url: str) -> int:
    study_id, attrs = _read_study(url, args.study, args.launch if args.wait_ready else None)
    spec = ExperimentSpec.from_json(attrs[SPEC_ATTR])
    resilience = spec.resilience
    retry = RetryAsNewAttempt(max_retry=resilience.max_retry)
    storage = open_storage(
        url,
        args.study,
        heartbeat_s=resilience.heartbeat_s,
        grace_s=resilience.grace_s,
        stale_callback=retry,
    )
    sampler, pruner = make_sampler(spec), make_pruner(spec)
    study = optuna.load_study(
        study_name=args.study, storage=storage, sampler=sampler, pruner=pruner
    )
    deadline = spec.budget.deadline(float(attrs[STARTED_ATTR]))
    gate = BudgetGate(storage.engine, study_id, spec.budget.trials, resilience.max_failed, deadline)
    if args.threads is not None:  # each trial sets it again from its config; this shows it early
        torch.set_num_threads(args.threads)
    log.info("torch threads: %d", torch.get_num_threads())
    log.info("devices: %s", _devices())
    stop = StopRequest()
    stop.install()
    tracker = (
        Tracker(spec, args.study, args.runs_dir, args.worker_id, machine=args.machine)
        if spec.tracking.enabled
        else None
    )
    runner = TrialRunner(
        spec, args.study, args.runs_dir, args.threads, stop, args.config_dir, tracker
    )
    loop = TrialLoop(
        study,
        storage,
        study_id,
        runner,
        resilience,
        args.worker_id,
        retry,
        stop,
        launch=args.launch,
        machine=args.machine,
        log_name=args.log_name,
    )
    try:
        log.info("stopping: %s", loop.pull(gate).value)
    except WorkerStopped:
        log.info("stopping: SIGTERM")
    except KeyError:  # Optuna's word for a row that is gone: the study's, or a real fault
        raise_if_deleted(storage, args.study)
        raise
    finally:
        storage.engine.dispose()
    return 0


def _devices() -> str:
    """The GPUs this worker sees (``--gpus-per-worker`` gives each container its own), or cpu."""
    if not torch.cuda.is_available():
        return "cpu"
    count = torch.cuda.device_count()
    return ", ".join(f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(count))


def _read_study(url: str, name: str, launch: str | None) -> tuple[int, dict[str, Any]]:
    """The study's id and user attrs (its spec), through a storage closed straight after.

    With ``launch``, first wait until the study is ready for that launch (``ready_attr``).

    Raises:
        HpoError: No such study made by hpo; with ``launch``, none ready within ``READY_WAIT_S``.
    """
    probe = open_storage(url, name)
    deadline = time.monotonic() + (READY_WAIT_S if launch else 0.0)
    try:
        while True:
            found = _study_attrs(probe, name)
            if found is not None and (launch is None or _is_ready(probe, found[0], launch)):
                break
            if time.monotonic() >= deadline:
                raise HpoError(
                    f"no study `{name}` in the database"
                    if launch is None
                    else f"study `{name}` was not made ready for launch {launch} within "
                    f"{READY_WAIT_S:.0f} s: its launcher refused it or ended first"
                )
            time.sleep(READY_POLL_S)
    finally:
        probe.engine.dispose()
    if SPEC_ATTR not in found[1]:
        raise HpoError(f"study `{name}` was not made by hpo (it has no `{SPEC_ATTR}`)")
    return found


def _is_ready(storage: RDBStorage, study_id: int, launch: str) -> bool:
    return ready_attr(launch) in storage.get_study_system_attrs(study_id)


def _study_attrs(storage: RDBStorage, name: str) -> tuple[int, dict[str, Any]] | None:
    """The study's id and user attrs, or ``None`` while there is no such study."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return study_id, storage.get_study_user_attrs(study_id)


def exit_now(code: int) -> NoReturn:
    """Flush, close W&B's service, and leave without the interpreter's teardown.

    Tearing down an interpreter that imported torch and Lightning takes ~1.2 s (measured in the
    trainer image), and a launch ends only when its last worker has exited. Nothing is left
    to tear down by now: the storage is disposed and every trial's W&B run finished.
    """
    if "wandb" in sys.modules:
        sys.modules["wandb"].teardown()  # what its atexit hook would do: stop wandb-core cleanly
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
