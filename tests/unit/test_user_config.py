"""A user's config folder and model (examples/custom_model) join hpo's, and are checked alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from trainer import experiment, fit
from trainer.errors import ConfigError
from trainer.spec import Budget, ExperimentSpec, Resilience

from orchestrator import study

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_model"
USER_CONF = EXAMPLE / "conf"


def _spec_of(name: str, config_dir: Path) -> ExperimentSpec:
    """The spec ``hpo launch --experiment name --config-dir config_dir`` would store."""
    return study.build_spec(
        name,
        [],
        budget=Budget(trials=4),
        sampler="tpe",
        pruner="median",
        seed=None,
        resilience=Resilience(),
        config_dir=config_dir,
    )


def test_user_experiments_are_listed_beside_ours() -> None:
    assert {"digits_cnn", "digits_mlp"} <= set(experiment.list_experiments(USER_CONF))
    assert "digits_cnn" not in experiment.list_experiments()


def test_user_experiment_composes_with_our_data_and_defaults() -> None:
    cfg = experiment.compose("digits_cnn", ["model.channels=24"], USER_CONF)
    assert cfg.model._target_ == "custom_model.DigitsCNN"
    assert cfg.model.channels == 24
    assert cfg.data._target_ == "trainer.data.digits.DigitsDataModule"
    assert cfg.trainer.max_epochs == 15


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.chanels=8"], "unknown config key `model.chanels`"),
        (["model.channels=wide"], "`model.channels` expects int"),
        (["model=resnet"], "choose one of: digits_cnn, entropy_mlp, mlp"),
    ],
)
def test_user_config_gets_the_same_one_line_errors(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        experiment.compose("digits_cnn", overrides, USER_CONF)


def test_missing_config_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config folder .*nope. does not exist"):
        experiment.compose("digits_mlp", [], tmp_path / "nope")
    (tmp_path / "a-file").write_text("x: 1\n")
    with pytest.raises(ConfigError, match=r"config folder .*a-file. is a file, not a folder"):
        experiment.compose("digits_mlp", [], tmp_path / "a-file")


def test_spec_of_a_user_experiment_validates_its_search_space() -> None:
    spec = _spec_of("digits_cnn", USER_CONF)
    assert set(spec.search_space) == {"channels", "dropout", "lr"}
    assert spec.objective.metrics == ("val_acc",)


@pytest.mark.slow
def test_user_model_trains_from_its_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    overrides = ["trainer.max_epochs=2", f"paths.output_dir={tmp_path}", "threads=1"]
    metrics = fit.run(experiment.compose("digits_cnn", overrides, USER_CONF))
    assert metrics["epochs"] == 2
    assert metrics["val_acc"] > 0.3  # 10 classes: chance is 0.1


def test_train_command_takes_hydras_config_dir_flag(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "trainer.train", "--config-dir", str(USER_CONF)]
    command += ["experiment=digits_cnn", "model.chanels=8"]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown config key `model.chanels`")
    assert result.stdout == ""


def test_a_user_file_that_is_not_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "experiment").mkdir()
    broken = tmp_path / "experiment" / "broken.yaml"
    broken.write_text("# @package _global_\nmodel:\n  hidden_dim: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        experiment.compose("broken", [], tmp_path)
    message = str(info.value)
    assert message.startswith(f"`{broken}` line 4 is not valid YAML: expected ',' or ']'")
    assert "(while parsing a flow sequence from line 3)" in message
    assert "\n" not in message


def test_a_target_that_cannot_be_imported_is_a_config_error() -> None:
    cfg = experiment.compose("digits_mlp", ["model._target_=mypkg.nets.Missing"])
    with pytest.raises(ConfigError, match=r"`model`: cannot import the `_target_` `mypkg\.nets"):
        fit.build(cfg)


def _experiment_with_space(folder: Path, space_yaml: str) -> None:
    (folder / "search_space").mkdir(parents=True)
    (folder / "experiment").mkdir()
    (folder / "search_space" / "mine.yaml").write_text(space_yaml)
    (folder / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /search_space: mine\n"
    )


@pytest.mark.parametrize(
    ("space_yaml", "expected"),
    [
        (  # a choice of a config group that does not exist: found whichever a sample would pick
            "opt: {type: categorical, key: model/optimizer, choices: [adamw, sgd, rmsprop]}\n",
            "search space (opt: rmsprop): unknown `model/optimizer` option `rmsprop`",
        ),
        (  # a typo in a key of one branch's sub-space
            "opt:\n  type: categorical\n  key: model/optimizer\n  choices: [adamw, sgd]\n"
            "  conditional:\n    sgd:\n"
            "      mom: {type: float, key: model.optimizer.momentun, low: 0.5, high: 0.9}\n",
            "search space (opt: sgd): unknown config key `model.optimizer.momentun`",
        ),
    ],
)
def test_every_branch_of_a_search_space_is_composed_before_the_study(
    space_yaml: str, expected: str, tmp_path: Path
) -> None:
    _experiment_with_space(tmp_path, space_yaml)
    with pytest.raises(ConfigError) as info:
        _spec_of("mine", tmp_path)
    assert str(info.value).startswith(expected)
    assert "Use `+" not in str(info.value)
