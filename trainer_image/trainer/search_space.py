"""Search spaces as YAML: validated by allow-list, sampled, applied as Hydra overrides.

The only module that calls ``trial.suggest_*``; pure Python, no torch.

A space maps parameter names to specs. Each spec names the config ``key`` it overrides (a value
key such as ``model.hidden_dim``, or a config group such as ``model/optimizer``)::

    lr:        {type: float, key: model.optimizer.lr, low: 1.0e-4, high: 1.0e-1, log: true}
    depth:     {type: int, key: model.depth, low: 1, high: 3}
    optimizer:
      type: categorical
      key: model/optimizer
      choices: [adamw, sgd]
      conditional:            # sampled only when that choice is taken; nests to any depth
        sgd:
          momentum: {type: float, key: model.optimizer.momentum, low: 0.5, high: 0.99}

Errors name the field (``search_space.lr.low``) and say the rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from trainer.errors import ConfigError

__all__ = [
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "Param",
    "SearchSpace",
    "hydra_value",
    "parse",
]

Scalar = str | int | float | bool | None
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*([./][A-Za-z_][A-Za-z0-9_]*)*$")
_PLAIN_STRING = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_FIELDS = {
    "float": {"type", "key", "low", "high", "log", "step"},
    "int": {"type", "key", "low", "high", "log", "step"},
    "categorical": {"type", "key", "choices", "conditional"},
}
_RELATIVE_TOLERANCE = 1e-9
_BACKSLASHES_BEFORE_QUOTE = re.compile(r"\\+(?='|$)")


class Suggester(Protocol):
    """The part of ``optuna.Trial`` a search space uses (so this module needs no optuna)."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class FloatParam:
    """A float in [low, high], on a log scale or in steps."""

    name: str
    key: str
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def suggest(self, trial: Suggester) -> float:
        """Sample this parameter."""
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True)
class IntParam:
    """An integer in [low, high], on a log scale or in steps."""

    name: str
    key: str
    low: int
    high: int
    log: bool = False
    step: int = 1

    def suggest(self, trial: Suggester) -> int:
        """Sample this parameter."""
        return trial.suggest_int(self.name, self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True)
class CategoricalParam:
    """One of ``choices``; ``conditional`` holds the sub-spaces sampled only for a given choice."""

    name: str
    key: str
    choices: tuple[Scalar, ...]
    conditional: Mapping[str, SearchSpace] = field(default_factory=dict)

    def suggest(self, trial: Suggester) -> Scalar:
        """Sample this parameter."""
        return trial.suggest_categorical(self.name, list(self.choices))  # type: ignore[no-any-return]


Param = FloatParam | IntParam | CategoricalParam


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameters; conditional ones live under their categorical parent."""

    params: tuple[Param, ...]

    def suggest(self, trial: Suggester) -> dict[str, Scalar]:
        """Sample every active parameter: a parent first, then the sub-space its choice opens."""
        values: dict[str, Scalar] = {}
        for param in self.params:
            value = param.suggest(trial)
            values[param.name] = value
            if isinstance(param, CategoricalParam) and str(value) in param.conditional:
                values |= param.conditional[str(value)].suggest(trial)
        return values

    def overrides(self, values: Mapping[str, Scalar]) -> list[str]:
        """Hydra overrides for sampled ``values``: config groups first, then value keys."""
        groups, keyed = self.assignments(values)
        return groups + [f"{key}={hydra_value(value)}" for key, value in keyed.items()]

    def assignments(self, values: Mapping[str, Scalar]) -> tuple[list[str], dict[str, Scalar]]:
        """Sampled ``values`` as a trial applies them: group choices and values by key.

        Config-group choices are Hydra overrides (they change which YAML is read); the values of
        keys are set on the composed config.
        """
        keys = {param.name: param.key for param in self.walk()}
        pairs = [(keys[name], value) for name, value in values.items()]
        groups = [f"{key}={hydra_value(value)}" for key, value in pairs if "/" in key]
        return groups, {key: value for key, value in pairs if "/" not in key}

    def searched_keys(self, prefix: str = "search_space") -> dict[str, str]:
        """Each config key the space sets, with the field that samples it (the first of several).

        An override of such a key on the command line would be overwritten by every trial.
        """
        found: dict[str, str] = {}
        for param in self.params:
            found.setdefault(param.key, f"{prefix}.{param.name}")
            if isinstance(param, CategoricalParam):
                for choice, branch in param.conditional.items():
                    nested = branch.searched_keys(f"{prefix}.{param.name}.conditional.{choice}")
                    found = nested | found
        return found

    def walk(self) -> list[Param]:
        """Every parameter at every depth."""
        found: list[Param] = []
        for param in self.params:
            found.append(param)
            if isinstance(param, CategoricalParam):
                for branch in param.conditional.values():
                    found += branch.walk()
        return found


def parse(raw: Any, where: str = "search_space") -> SearchSpace:
    """Validate a search space (a mapping from YAML) and build it.

    Raises:
        ConfigError: The first problem found, naming its field, e.g. ``search_space.lr.low``.
    """
    space = _parse_space(raw, where)
    seen: dict[str, str] = {}
    for param in space.walk():
        if param.name in seen:
            raise ConfigError(
                f"`{where}` defines the parameter `{param.name}` twice; names must be unique "
                "at every depth."
            )
        seen[param.name] = param.key
    return space


def _parse_space(raw: Any, where: str) -> SearchSpace:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"`{where}` must be a non-empty mapping of parameter names to specs.")
    return SearchSpace(
        tuple(_parse_param(str(name), spec, f"{where}.{name}") for name, spec in raw.items())
    )


def _parse_param(name: str, spec: Any, where: str) -> Param:
    if not _NAME.match(name):
        raise ConfigError(f"`{where}`: a parameter name must be a Python identifier, got {name!r}.")
    if not isinstance(spec, Mapping):
        raise ConfigError(f"`{where}` must be a mapping with `type` and `key`, got {spec!r}.")
    kind = spec.get("type")
    if kind not in _FIELDS:
        raise ConfigError(f"`{where}.type` must be one of: categorical, float, int; got {kind!r}.")
    unknown = sorted(set(spec) - _FIELDS[kind])
    if unknown:
        allowed = ", ".join(sorted(_FIELDS[kind]))
        raise ConfigError(
            f"`{where}.{unknown[0]}` is not a field of a {kind} parameter ({allowed})."
        )
    key = spec.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        example = "a config key (`model.lr`) or group (`model/optimizer`)"
        raise ConfigError(f"`{where}.key` must name {example}, got {key!r}.")
    if kind == "categorical":
        return _parse_categorical(name, key, spec, where)
    return _parse_number(name, key, kind, spec, where)


def _parse_number(name: str, key: str, kind: str, spec: Mapping[str, Any], where: str) -> Param:
    low, high = (
        _number(spec.get(f), f"{where}.{f}", integer=kind == "int") for f in ("low", "high")
    )
    if low >= high:
        raise ConfigError(f"`{where}.low` must be below `{where}.high`, got {low} >= {high}.")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"`{where}.log` must be true or false, got {log!r}.")
    if log and low <= 0:
        raise ConfigError(f"`{where}.low` must be > 0 on a log scale, got {low}.")
    step = spec.get("step")
    if step is not None:
        step = _number(step, f"{where}.step", integer=kind == "int")
        if step <= 0:
            raise ConfigError(f"`{where}.step` must be > 0, got {step}.")
        if log:
            raise ConfigError(f"`{where}`: `step` and `log: true` cannot be combined.")
        if not _divides(step, high - low):
            raise ConfigError(f"`{where}.step` ({step}) must divide high - low ({high - low}).")
    if kind == "int":
        return IntParam(name, key, int(low), int(high), log, int(step or 1))
    return FloatParam(
        name, key, float(low), float(high), log, None if step is None else float(step)
    )


def _parse_categorical(
    name: str, key: str, spec: Mapping[str, Any], where: str
) -> CategoricalParam:
    choices = spec.get("choices")
    if not isinstance(choices, list | tuple) or not choices:
        raise ConfigError(f"`{where}.choices` must be a non-empty list, got {choices!r}.")
    for choice in choices:
        if not isinstance(choice, str | int | float | bool) and choice is not None:
            raise ConfigError(f"`{where}.choices` may hold only scalars, got {choice!r}.")
        if isinstance(choice, float) and not math.isfinite(choice):
            raise ConfigError(f"`{where}.choices` may not hold {choice}.")
    if len({repr(c) for c in choices}) != len(choices):
        raise ConfigError(f"`{where}.choices` lists a choice twice: {list(choices)!r}.")
    raw_branches = spec.get("conditional") or {}
    if not isinstance(raw_branches, Mapping):
        raise ConfigError(f"`{where}.conditional` must map choices to parameter specs.")
    branches: dict[str, SearchSpace] = {}
    for choice, sub in raw_branches.items():
        if str(choice) not in {str(c) for c in choices}:
            raise ConfigError(
                f"`{where}.conditional.{choice}` is not one of the choices {list(choices)!r}."
            )
        branches[str(choice)] = _parse_space(sub, f"{where}.conditional.{choice}")
    return CategoricalParam(name, key, tuple(choices), branches)


def _number(value: Any, where: str, *, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"`{where}` must be a number, got {value!r}.")
    if not math.isfinite(value):
        raise ConfigError(f"`{where}` must be finite, got {value}.")
    if integer and not isinstance(value, int):
        raise ConfigError(f"`{where}` must be an integer for an int parameter, got {value!r}.")
    return value


def _divides(step: float, span: float) -> bool:
    count = round(span / step)
    return abs(count * step - span) <= _RELATIVE_TOLERANCE * max(1.0, abs(span))


# Words Hydra's grammar reads as null, booleans or floats, in any case: such strings are quoted.
_GRAMMAR_WORDS = frozenset({"null", "true", "false", "inf", "nan"})


def hydra_value(value: Scalar) -> str:
    """A value as Hydra's override grammar reads it back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if _PLAIN_STRING.match(value) and value.lower() not in _GRAMMAR_WORDS:
        return value
    # Hydra reads backslashes literally except in runs before a quote (or the closing quote),
    # where each pair is one backslash; `${` would start an interpolation.
    escaped = _BACKSLASHES_BEFORE_QUOTE.sub(lambda run: run.group(0) * 2, value)
    escaped = escaped.replace("'", "\\'").replace("${", "\\${")
    return f"'{escaped}'"
