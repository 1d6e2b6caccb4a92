"""Train a finished trial's configuration once more, keep the model, and test it.

The config is the trial's exactly (the study's overrides plus its params, the same seed), so on
CPU the val metric comes back as the trial logged it, within the noise of a different thread
count; the test split, never seen by the search, gives the number to quote. The checkpoint and
the composed config are kept beside each other.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from trainer import search_space
from trainer.retries import retry_of
from trainer.spec import ExperimentSpec

from orchestrator.errors import ConfigError

__all__ = ["Retrained", "pick_trial", "retrain"]


@dataclass(frozen=True)
class Retrained:
    """What a retrain gives back."""

    metrics: dict[str, float]
    checkpoint: Path
    config: Path


def pick_trial(
    trials: list[FrozenTrial], best: list[FrozenTrial], number: int | None
) -> FrozenTrial:
    """Trial ``number``, or the best one; it must have completed.

    Raises:
        ConfigError: No such trial, one that did not complete, or no completed trial at all.
    """
    if number is None:
        if not best:
            raise ConfigError("no trial of this study has completed yet: nothing to retrain.")
        return best[0]
    found = [t for t in trials if t.number == number]
    if not found:
        raise ConfigError(f"no trial {number} in this study (0..{len(trials) - 1}).")
    if found[0].state is not TrialState.COMPLETE:
        raise ConfigError(
            f"trial {number} is {found[0].state.name}, not COMPLETE{_retried_as(trials, number)}."
        )
    return found[0]


def _retried_as(trials: list[FrozenTrial], number: int) -> str:
    """Where a failed trial's params went next: a user who picked it wants its last retry.

    The same params ran again as a new trial (``--max-retry``); following the chain to its end
    names the attempt that counts, or says that every attempt failed.
    """
    next_attempt = {retry_of(t.system_attrs): t for t in trials}
    last = None
    while (retry := next_attempt.get(number)) is not None:
        last, number = retry, retry.number
    if last is None:
        return ": pick another"
    again = f"; it ran again as trial {last.number}, which"
    if last.state is TrialState.COMPLETE:
        return f"{again} completed: --trial {last.number}"
    if not last.state.is_finished():
        return f"{again} is {last.state.name}: retrain it once it completes"
    return f"{again} is {last.state.name}: pick another"


def retrain(spec: ExperimentSpec, params: dict[str, Any], out: Path) -> Retrained:
    """Fit ``params`` as the study's trials were fitted; save model and config in ``out``.

    Raises:
        ConfigError: The trainer stack (torch, Lightning) is not installed here.
    """
    try:
        from omegaconf import OmegaConf
        from trainer import experiment, fit
    except ImportError as e:
        raise ConfigError(
            f"hpo retrain trains here and needs the trainer extra ({e.name} is missing): "
            "pip install 'hpo[trainer]'."
        ) from None
    space = search_space.parse(spec.search_space)
    # A retrain replaces the last one of this trial: model and config are overwritten, and the
    # old curves go first, or Lightning would warn that it is about to delete them.
    shutil.rmtree(out / "csv", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    overrides = [*spec.overrides, *space.overrides(params)]
    overrides.append(f"paths.output_dir={search_space.hydra_value(str(out))}")
    cfg = experiment.compose(spec.experiment, overrides)
    checkpoint, config = out / "model.ckpt", out / "config.yaml"
    OmegaConf.save(cfg, config)
    with fit.lightning_quiet():
        metrics = fit.run(cfg, checkpoint=checkpoint)
    return Retrained(metrics, checkpoint, config)
