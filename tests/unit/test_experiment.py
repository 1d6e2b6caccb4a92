"""Composition through Hydra's compose API, and the one-line errors for bad overrides."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from trainer import experiment
from trainer.errors import ConfigError


def test_lists_bundled_experiments() -> None:
    assert "digits_mlp" in experiment.list_experiments()


def test_overrides_reach_the_composed_config() -> None:
    cfg = experiment.compose("digits_mlp", ["model.hidden_dim=256", "model/optimizer=sgd"])
    assert cfg.model.hidden_dim == 256
    assert cfg.model.optimizer._target_ == "torch.optim.SGD"
    assert cfg.experiment_name == "digits_mlp"


def test_scheduler_interpolates_the_epoch_budget() -> None:
    cfg = experiment.compose("digits_mlp", ["model/scheduler=cosine", "trainer.max_epochs=7"])
    assert OmegaConf.to_container(cfg.model.scheduler, resolve=True)["T_max"] == 7


def test_int_widens_to_float() -> None:
    cfg = experiment.compose("digits_mlp", ["model.dropout=0"])
    assert cfg.model.dropout == 0


def test_a_group_can_be_left_out() -> None:
    assert "logger" not in experiment.compose("digits_mlp", ["~logger"])


def test_new_keys_need_a_plus() -> None:
    cfg = experiment.compose("digits_mlp", ["+model.extra=1"])
    assert cfg.model.extra == 1


@pytest.mark.parametrize(
    "override",
    [
        "hydra.run.dir=/tmp/run",
        "hydra.job.chdir=true",
        "hydra.verbose=true",
        "hydra/job_logging=disabled",
    ],
)
def test_hydras_own_settings_are_accepted(override: str) -> None:
    """``python -m trainer.train`` is a Hydra app: its users set ``hydra.*`` as in any other."""
    cfg = experiment.compose("digits_mlp", [override])
    assert "hydra" not in cfg


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        ("nope", [], "unknown experiment `nope`; choose one of: digits_mlp"),
        ("digits_mlp", ["model.hiden_dim=3"], "unknown config key `model.hiden_dim`"),
        ("digits_mlp", ["model.hiden_dim=3"], "hidden_dim"),
        ("digits_mlp", ["nosuch.key=3"], "unknown config key `nosuch.key`"),
        ("digits_mlp", ["hydra.run.dri=/tmp"], "valid keys under `hydra.run`: dir"),
        ("digits_mlp", ["model.hidden_dim=abc"], "`model.hidden_dim` expects int"),
        ("digits_mlp", ["trainer.max_epochs=2.5"], "`trainer.max_epochs` expects int"),
        ("digits_mlp", ["trainer.enable_progress_bar=1"], "expects bool"),
        ("digits_mlp", ["model/optimizer=adam"], "choose one of: adamw, sgd"),
        ("digits_mlp", ["model.hidden_dim=="], "malformed override"),
        ("digits_mlp", ["logger=null"], "use `~logger` to leave it out"),
        (
            "digits_mlp",
            ["trainer.max_epochs=${epochs}"],
            "`trainer.max_epochs`: Interpolation key 'epochs' not found.",
        ),
        ("digits_mlp", ["+model.extra=${data.nope}"], "Interpolation key 'data.nope' not found"),
    ],
)
def test_bad_overrides_name_the_key(name: str, overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        experiment.compose(name, overrides)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_an_interpolation_only_a_running_app_resolves_is_left_to_the_run() -> None:
    cfg = experiment.compose("digits_mlp", ["trainer.default_root_dir=${hydra:runtime.output_dir}"])
    assert "default_root_dir: ${hydra:runtime.output_dir}" in OmegaConf.to_yaml(cfg)
