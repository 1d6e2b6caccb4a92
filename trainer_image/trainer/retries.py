"""How a failed trial is tried again: the same params, as a new attempt with nothing of the old one.

Optuna's ``RetryHeartbeatStaleTrialCallback`` copies the failed trial's user attrs into its
retry. In hpo those describe one attempt: why it failed (``fail_reason``), its W&B run, the
worker that ran it. A retry that inherited them would, if it failed unseen (a stale heartbeat,
which records no reason), show the earlier attempt's reason, and would link to the earlier
attempt's W&B run until its own started. The retry chain itself stays in the system attrs, where
Optuna keeps it (``retry_history``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial

__all__ = ["RetryAsNewAttempt", "retry_of"]


class RetryAsNewAttempt(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Retry a failed trial (up to ``max_retry`` times) without its user attrs."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Enqueue the retry of ``trial``: a WAITING trial with its params, if retries are left."""
        attempt = copy.copy(trial)
        attempt.user_attrs = {}
        super().__call__(study, attempt)


def retry_of(system_attrs: Mapping[str, Any]) -> int | None:
    """The number of the trial that a trial with these system attrs tries again, if any.

    That is the latest failed attempt: Optuna's ``failed_trial`` is the first of the chain.
    """
    history = system_attrs.get("retry_history") or []
    return int(history[-1]) if history else None
