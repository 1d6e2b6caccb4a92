"""``python -m trainer.train experiment=digits_mlp model.hidden_dim=256``: one training run.

Hydra's ``@hydra.main`` gives the run its own folder (config, log and curves under
``outputs/<experiment>/<time>``). The overrides are validated with the compose API first, so a
mistake ends in one line and exit code 2 rather than Hydra's traceback. The final metrics are
printed to stdout as one JSON line; logs go to stderr.
"""

from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig

from trainer import experiment
from trainer.errors import ConfigError

USAGE_ERROR = 2


def main() -> None:
    """Validate the command line's overrides, then run through ``@hydra.main``."""
    overrides = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    try:
        experiment.compose_overrides(overrides)
    except ConfigError as e:
        _fail(e)
    _train()


@hydra.main(version_base="1.3", config_path="conf", config_name=experiment.ROOT_CONFIG)
def _train(cfg: DictConfig) -> None:
    from trainer import fit  # torch loads only once the config is known to be good

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
