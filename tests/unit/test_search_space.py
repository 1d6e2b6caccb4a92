"""Search-space parsing, validation, sampling and the overrides it produces."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import example, given
from hypothesis import strategies as st
from omegaconf import OmegaConf
from trainer import experiment, search_space
from trainer.errors import ConfigError
from trainer.search_space import CategoricalParam, FloatParam, IntParam

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _digits_space() -> search_space.SearchSpace:
    cfg = experiment.compose("digits_mlp")
    return search_space.parse(OmegaConf.to_container(cfg.search_space))


def test_digits_space_has_every_kind_and_a_conditional() -> None:
    space = _digits_space()
    kinds = {type(p) for p in space.walk()}
    assert kinds == {FloatParam, IntParam, CategoricalParam}
    names = [p.name for p in space.walk()]
    assert "momentum" in names
    assert "momentum" not in [p.name for p in space.params]


def test_every_sample_of_digits_space_composes() -> None:
    """The space and the config tree agree: each sampled set is a valid set of overrides."""
    space = _digits_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    saw_momentum = False
    for _ in range(25):
        trial = study.ask()
        values = space.suggest(trial)
        cfg = experiment.compose("digits_mlp", space.overrides(values))
        assert cfg.model.hidden_dim == values["hidden_dim"]
        assert cfg.data.batch_size == values["batch_size"]
        assert ("momentum" in values) == (values["optimizer"] == "sgd")
        if "momentum" in values:
            saw_momentum = True
            assert cfg.model.optimizer.momentum == values["momentum"]
        study.tell(trial, 0.0)
    assert saw_momentum


def test_searched_keys_name_the_field_that_samples_each_key() -> None:
    searched = _digits_space().searched_keys()
    assert searched["model.depth"] == "search_space.depth"
    assert searched["model/optimizer"] == "search_space.optimizer"
    assert searched["model.optimizer.momentum"] == "search_space.optimizer.conditional.sgd.momentum"
    assert "trainer.max_epochs" not in searched


def test_group_overrides_come_first() -> None:
    space = _digits_space()
    overrides = space.overrides({"lr": 0.01, "optimizer": "sgd", "momentum": 0.9})
    assert overrides[0] == "model/optimizer=sgd"


def _float(**fields: Any) -> dict[str, Any]:
    return {"x": {"type": "float", "key": "model.dropout", "low": 0.1, "high": 0.5, **fields}}


@pytest.mark.parametrize(
    ("raw", "field", "rule"),
    [
        (_float(low=0.6), "search_space.x.low", "must be below"),
        (_float(low=0.0, log=True), "search_space.x.low", "> 0 on a log scale"),
        (_float(step=0.3), "search_space.x.step", "must divide"),
        (_float(step=-0.1), "search_space.x.step", "> 0"),
        (_float(step=0.1, log=True), "search_space.x", "cannot be combined"),
        (_float(low=float("nan")), "search_space.x.low", "finite"),
        (_float(high="big"), "search_space.x.high", "must be a number"),
        (_float(log="yes"), "search_space.x.log", "true or false"),
        (_float(lows=1), "search_space.x.lows", "is not a field"),
        (_float(type="uniform"), "search_space.x.type", "must be one of"),
        (_float(key="model..x"), "search_space.x.key", "must name"),
        (
            {"x": {"type": "int", "key": "a.b", "low": 1, "high": 2.5}},
            "search_space.x.high",
            "integer",
        ),
        (
            {"x": {"type": "categorical", "key": "a", "choices": []}},
            "search_space.x.choices",
            "non-empty",
        ),
        (
            {"x": {"type": "categorical", "key": "a", "choices": [1, 1]}},
            "search_space.x.choices",
            "twice",
        ),
        (
            {"x": {"type": "categorical", "key": "a", "choices": [[1]]}},
            "search_space.x.choices",
            "scalars",
        ),
        (
            {
                "x": {
                    "type": "categorical",
                    "key": "a",
                    "choices": ["p"],
                    "conditional": {"q": _float()},
                }
            },
            "search_space.x.conditional.q",
            "not one of the choices",
        ),
        (
            {
                "x": {
                    "type": "categorical",
                    "key": "a",
                    "choices": ["p"],
                    "conditional": {"p": _float()},
                }
            },
            "search_space",
            "twice",
        ),
        (
            {"bad-name": {"type": "int", "key": "a", "low": 0, "high": 1}},
            "search_space.bad-name",
            "identifier",
        ),
        ([], "search_space", "non-empty mapping"),
    ],
)
def test_bad_spaces_name_the_field(raw: Any, field: str, rule: str) -> None:
    with pytest.raises(ConfigError) as info:
        search_space.parse(raw)
    message = str(info.value)
    assert f"`{field}" in message
    assert rule in message


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(a=finite, b=finite, log=st.booleans())
def test_valid_float_params_sample_within_bounds(a: float, b: float, log: bool) -> None:
    low, high = sorted((abs(a) + 1e-3, abs(b) + 2e-3)) if log else sorted((a, b))
    if low >= high:
        return
    space = search_space.parse(_float(low=low, high=high, log=log))
    trial = optuna.create_study().ask()
    value = space.suggest(trial)["x"]
    assert low <= value <= high


@given(
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
    )
)
@example(value="${oc.env:HOME}")
@example(value="\\0")
@example(value="it's\\")
@example(value="INF")
@example(value="NaN")
@example(value="True")
def test_override_values_read_back_unchanged(value: Any) -> None:
    param = CategoricalParam("x", "model.activation", (value,))
    (override,) = search_space.SearchSpace((param,)).overrides({"x": value})
    (parsed,) = OverridesParser.create().parse_overrides([override])
    read = OmegaConf.create({"x": parsed.value()}).x  # as the composed config reads it
    if isinstance(value, float) and not isinstance(value, bool):
        assert math.isclose(read, value) or read == value
    else:
        assert read == value
