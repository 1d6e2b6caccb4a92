"""What the worker's trial runs and the launcher's study run agree on, without importing torch.

The host side (``hpo wandb``, ``hpo sync``) and the workers must find the same runs: same ids,
same folder, same rule for online or offline.
"""

from __future__ import annotations

import hashlib
import logging
import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "FLUSH_INTERVAL_S",
    "RUN_ID_ATTR",
    "RUN_SETTINGS",
    "api_key",
    "init_run",
    "netrc_machine",
    "online_finish_timeout_s",
    "online_init_timeout_s",
    "run_id",
    "wandb_dir",
    "wandb_url",
    "wants_online",
]

log = logging.getLogger("trainer.worker")
CLOUD_URL = "https://api.wandb.ai"
RUN_ID_ATTR = "wandb_run_id"  # the trial's user attr that links it to its run
# W&B's default is 90 s: a trial would wait that long before it went offline. W&B's own
# WANDB_INIT_TIMEOUT, where set (a slow link), is honoured instead.
ONLINE_INIT_TIMEOUT_S = 15.0
# W&B's default is to wait as long as it takes: a rate-limited or failing server (429s, 5xx
# retried with backoff) held the trial, and its worker, in `run.finish()` for good.
# WANDB_FINISH_TIMEOUT, where set, is honoured instead.
ONLINE_FINISH_TIMEOUT_S = 30.0
# W&B keeps an offline run's records in memory and writes them every 15 s by default, so a trial
# killed sooner (OOM, `docker kill`) would leave an empty run: every 2 s, as the CSV curves are
# written, keeps all but its last 2 s.
FLUSH_INTERVAL_S = 2.0
# What a trial run does not need, each a cost paid per trial: the worker's console (its log file
# has it), system stats, machine metadata, git and code (the config records image and revision),
# the pip freeze (the image pins it).
RUN_SETTINGS: dict[str, Any] = {
    "x_transaction_log_flush_interval": FLUSH_INTERVAL_S,
    "silent": True,
    "console": "off",
    "x_disable_stats": True,
    "x_disable_meta": True,
    "x_disable_machine_info": True,
    "disable_git": True,
    "disable_code": True,
    "save_code": False,
    "x_save_requirements": False,
}


def run_id(study: str, key: int | str) -> str:
    """The W&B run id of trial ``key`` (a number) or of the study run (``"study"``).

    Derived, not random: every worker and every sync agrees on it, so one trial is one run.
    """
    return hashlib.sha1(f"{study}/{key}".encode()).hexdigest()[:16]


def wandb_dir(runs_dir: Path, study: str) -> Path:
    """The folder W&B writes under (it adds ``wandb/``): the study's run folder."""
    return runs_dir / study


def wants_online() -> bool:
    """Online when a key is given (see ``api_key``) and W&B is not forced off."""
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return False
    return api_key() is not None


def api_key() -> str | None:
    """The W&B key: ``WANDB_API_KEY``, else the W&B server's entry in the netrc file.

    That file is ``NETRC``'s (a worker container's mounted secret), else ``~/.netrc``, where
    ``wandb login`` writes it: so a user who logged in once needs no variable.
    """
    if key := os.environ.get("WANDB_API_KEY"):
        return key
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    try:
        entry = netrc.netrc(path).authenticators(netrc_machine())
    except (OSError, netrc.NetrcParseError):
        return None
    return entry[2] or None if entry else None


def netrc_machine() -> str:
    """The netrc ``machine`` that W&B looks the key up under: its server's ``host[:port]``."""
    return urlsplit(wandb_url()).netloc or "api.wandb.ai"


def wandb_url() -> str:
    """The W&B server: ``WANDB_BASE_URL``, else W&B's cloud."""
    return os.environ.get("WANDB_BASE_URL", CLOUD_URL)


def online_init_timeout_s() -> float:
    """How long ``wandb.init`` may try to reach the server before the run goes offline."""
    return float(os.environ.get("WANDB_INIT_TIMEOUT", ONLINE_INIT_TIMEOUT_S))


def online_finish_timeout_s() -> float:
    """How long an online run's ``finish`` may wait for W&B to take its last data."""
    return float(os.environ.get("WANDB_FINISH_TIMEOUT", ONLINE_FINISH_TIMEOUT_S))


def init_run(settings: dict[str, Any], online: bool) -> tuple[Any, bool]:
    """``wandb.init(**settings)``: online if asked and possible, else offline.

    Never raises for want of a network or a good key.

    Returns:
        The run, and whether online still works (False once it failed: stay offline after).
    """
    import wandb

    if online:
        try:
            bounded = wandb.Settings(
                init_timeout=online_init_timeout_s(),
                finish_timeout=online_finish_timeout_s(),
                finish_timeout_raises=True,  # `TrialRun.finish` turns later runs offline
                **RUN_SETTINGS,
            )
            return wandb.init(mode="online", settings=bounded, **settings), True
        except Exception as e:  # W&B raises many kinds; every one means: go on offline
            reason = (str(e).splitlines() or [type(e).__name__])[0]  # not W&B's advice lines
            log.warning("W&B online failed (%s); logging offline from now on", reason)
            # The abandoned attempt keeps the run id taken in W&B's service process, which
            # then refuses it offline ("run ID ... is in use"); a new service starts clean.
            wandb.teardown()
    return wandb.init(mode="offline", settings=wandb.Settings(**RUN_SETTINGS), **settings), False
