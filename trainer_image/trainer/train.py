"""``python -m trainer.train experiment=digits_mlp model.hidden_dim=256``: one training run.

Hydra's ``@hydra.main`` gives the run its own folder (config, log and curves under
``outputs/<experiment>/<time>``), and its flags: ``--config-dir DIR`` adds a user's config
folder, and ``-m`` runs a sweep (``model.depth=1,2``), one job after another. The overrides are
validated with the compose API first (a sweep's first job), so a mistake ends in one line and
exit code 2 rather than Hydra's traceback. The final metrics are printed to stdout as one JSON
line; logs go to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from trainer import experiment
from trainer.errors import ConfigError

USAGE_ERROR = 2


def main() -> None:
    """Validate the command line's overrides, then run through ``@hydra.main``."""
    overrides, config_dir = _split_command_line(sys.argv[1:])
    multirun = any(arg in ("-m", "--multirun") for arg in sys.argv[1:])
    try:
        checked = experiment.first_job(overrides) if multirun else overrides
        experiment.compose_overrides(checked, config_dir)
    except ConfigError as e:
        _fail(e)
    _train()


def _split_command_line(args: list[str]) -> tuple[list[str], Path | None]:
    """The overrides, and the folder of Hydra's ``--config-dir``/``-cd`` flag (other flags go)."""
    overrides: list[str] = []
    config_dir = None
    words = iter(args)
    for arg in words:
        if arg in ("--config-dir", "-cd"):
            config_dir = Path(next(words, ""))
        elif arg.startswith("--config-dir="):
            config_dir = Path(arg.partition("=")[2])
        elif not arg.startswith("-"):
            overrides.append(arg)
    return overrides, config_dir


@hydra.main(version_base="1.3", config_path="conf", config_name=experiment.ROOT_CONFIG)
def _train(cfg: DictConfig) -> None:
    from trainer import fit  # torch loads only once the config is known to be good

    # The job's own folder: a multirun's jobs (<sweep dir>/<job number>) would otherwise share one
    # `${now:...}` folder, and each job's curves overwrite the last's.
    cfg.paths.output_dir = HydraConfig.get().runtime.output_dir
    try:
        metrics = fit.run(cfg)
    except ConfigError as e:
        _fail(e)
    print(json.dumps(metrics, sort_keys=True), flush=True)


def _fail(error: ConfigError) -> None:
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


if __name__ == "__main__":
    main()
