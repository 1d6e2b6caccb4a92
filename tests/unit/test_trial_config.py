"""A trial's config set on a kept composition equals Hydra's composition of the same overrides."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from trainer import experiment, search_space
from trainer.errors import ConfigError
from trainer.trial_config import TrialConfigs

optuna.logging.set_verbosity(optuna.logging.WARNING)
CUSTOM = Path(__file__).parents[2] / "examples" / "custom_model" / "conf"
CASES = [*((name, None) for name in experiment.list_experiments()), ("digits_cnn", CUSTOM)]


@pytest.mark.parametrize(("name", "config_dir"), CASES)
def test_every_sampled_trial_config_equals_hydras(name: str, config_dir: Path | None) -> None:
    cfg = experiment.compose(name, [], config_dir)
    space = search_space.parse(OmegaConf.to_container(cfg.search_space, resolve=True))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study_overrides = ["trainer.max_epochs=3", "seed=7"]
    configs = TrialConfigs(name, study_overrides, config_dir)
    for number in range(12):
        values = space.suggest(study.ask())
        groups, keyed = space.assignments(values)
        keyed |= {"paths.output_dir": f"/runs/s/trial-{number}", "threads": 1}
        ours = configs.compose(groups, keyed)
        overrides = [*study_overrides, *space.overrides(values)]
        overrides += [f"paths.output_dir=/runs/s/trial-{number}", "threads=1"]
        hydras = experiment.compose(name, overrides, config_dir, validate=False)
        assert OmegaConf.to_container(ours) == OmegaConf.to_container(hydras), values
        assert OmegaConf.to_container(ours, resolve=True) == OmegaConf.to_container(
            hydras, resolve=True
        )
    assert 1 <= len(configs._composed) <= 2  # one composition per optimizer group at most


def test_a_trial_config_is_its_own_copy() -> None:
    configs = TrialConfigs("digits_mlp", [])
    first = configs.compose([], {"model.hidden_dim": 32})
    second = configs.compose([], {"model.hidden_dim": 64})
    assert (first.model.hidden_dim, second.model.hidden_dim) == (32, 64)
    assert configs.compose([], {}).model.hidden_dim not in (32, 64)


def test_an_unknown_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"model\.no_such_key"):
        TrialConfigs("digits_mlp", []).compose([], {"model.no_such_key": 1})
