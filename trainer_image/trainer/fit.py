"""Turn a composed config into a trained model and its metrics: the body of every trial.

Follows lightning-hydra-template's ``train()``: instantiate data, model, loggers and Trainer from
their ``_target_``, fit, test, return the metrics. A user's own DataModule or LightningModule plugs
in by YAML alone, from any importable package.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.profilers import PassThroughProfiler
from omegaconf import DictConfig

from trainer.errors import ConfigError

__all__ = ["Components", "Unprofiled", "build", "lightning_quiet", "run"]

# Data sits in memory as tensors on purpose (worker processes would only add start-up and copies);
# and lightning 2.6 calls torch 2.13's deprecated LeafSpec, which would be noise in every trial log.
_EXPECTED_WARNINGS = (".*does not have many workers.*", r".*isinstance\(treespec, LeafSpec\).*")


class Unprofiled(PassThroughProfiler):
    """Lightning's default profiler (it profiles nothing), without a generator per hook call.

    Lightning wraps every hook call in ``profiler.profile(name)``, about 6,000 calls in a default
    digits trial. The default's ``profile`` is a ``@contextmanager`` generator, a few
    microseconds each: ~3 % of such a trial (bench/train.py). One shared ``nullcontext`` does the
    same nothing. A configured profiler (``+trainer.profiler=simple``) replaces this one.
    """

    _nothing: AbstractContextManager[None] = nullcontext()

    def profile(self, action_name: str) -> AbstractContextManager[None]:  # type: ignore[override]
        """A context that does nothing: the same object every call."""
        return self._nothing


@dataclass(frozen=True)
class Components:
    """What one run trains: the parts ``build`` made from the config."""

    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer


def build(
    cfg: DictConfig, callbacks: Sequence[Callback] = (), loggers: Sequence[Logger] = ()
) -> Components:
    """Seed, set torch's threads, and instantiate the DataModule, model, loggers and Trainer.

    ``callbacks`` and ``loggers`` join those of the config: objects made in code, such as a
    trial's pruning callback or its W&B run, which YAML cannot describe.

    Raises:
        ConfigError: A part rejected its config (a value out of range, an unknown argument) or
            ``threads`` is not a positive integer.
    """
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.threads is not None:
        if not isinstance(cfg.threads, int) or cfg.threads < 1:
            raise ConfigError(f"`threads` must be a positive integer or null, got {cfg.threads!r}.")
        torch.set_num_threads(cfg.threads)
    datamodule = _instantiate("data", cfg.data)
    model = _instantiate("model", cfg.model)
    configured_loggers = [_instantiate("logger", c) for c in (cfg.get("logger") or {}).values()]
    all_loggers: list[Logger] = [*configured_loggers, *loggers]
    configured = [_instantiate("callbacks", c) for c in (cfg.get("callbacks") or {}).values()]
    unprofiled = {} if cfg.trainer.get("profiler") is not None else {"profiler": Unprofiled()}
    trainer = _instantiate(
        "trainer",
        cfg.trainer,
        logger=all_loggers or False,
        callbacks=[*configured, *callbacks],
        **unprofiled,
    )
    return Components(datamodule=datamodule, model=model, trainer=trainer)


def run(
    cfg: DictConfig,
    callbacks: Sequence[Callback] = (),
    loggers: Sequence[Logger] = (),
    checkpoint: Path | None = None,
) -> dict[str, float]:
    """Fit, then test, the experiment described by ``cfg``; extras as in ``build``.

    ``checkpoint`` names a file to save the fitted model to (a retrain keeps it; trials do not).

    Returns:
        The last epoch's train/val metrics, the test metrics and the number of epochs run.

    Raises:
        ConfigError: See ``build``.
    """
    parts = build(cfg, callbacks, loggers)
    with warnings.catch_warnings():
        for message in _EXPECTED_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        parts.trainer.fit(parts.model, datamodule=parts.datamodule)
        if checkpoint is not None:
            # All of it (optimizer and loop state too): a retrained model may be trained on.
            parts.trainer.save_checkpoint(checkpoint, weights_only=False)
        fitted = {name: float(value) for name, value in parts.trainer.callback_metrics.items()}
        (tested,) = parts.trainer.test(parts.model, datamodule=parts.datamodule, verbose=False)
    return {**fitted, **tested, "epochs": float(parts.trainer.current_epoch)}


@contextmanager
def lightning_quiet() -> Iterator[None]:
    """Lightning's INFO lines (devices, a tip, why the fit stopped) left out while inside.

    A worker would repeat them for every trial, and they would bury `hpo retrain`'s result;
    its warnings still show.
    """
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _instantiate(group: str, node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` with a constructor's complaint turned into a ``ConfigError``."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        # Lightning's MisconfigurationException is its ValueError: `max_epochs=-2`, no GPU.
        if isinstance(cause, ValueError | TypeError | MisconfigurationException):
            raise ConfigError(f"`{group}`: {cause}") from e
        if isinstance(cause, ImportError):  # a `_target_` that names nothing importable
            target = re.search(r"target '([^']+)'", str(e))
            named = f" `{target.group(1)}`" if target else ""
            reason = str(cause.__cause__ or cause).splitlines()[0]
            raise ConfigError(f"`{group}`: cannot import the `_target_`{named} ({reason}).") from e
        raise
