"""Compose an experiment's config with Hydra's compose API, and validate overrides first.

A trial composes its config from Python with its sampled params as overrides, so composition is a
function (``compose``) rather than ``@hydra.main``. Overrides are checked before composing so that a
typo or a wrong type ends in one line that names the key and the valid choices, instead of Hydra's
multi-line error or, worse, a value of the wrong type silently reaching the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import GrammarParseError, InterpolationKeyError, OmegaConfBaseException

from trainer.errors import ConfigError
from trainer.wandb_runs import wants_online

__all__ = [
    "CONFIG_MODULE",
    "ROOT_CONFIG",
    "compose",
    "compose_overrides",
    "first_job",
    "list_experiments",
]

CONFIG_MODULE = "trainer.conf"
ROOT_CONFIG = "config"

_ABSENT = object()

# `logger=wandb` logs online only with a key, as a worker's trial runs do (`wants_online`).
OmegaConf.register_new_resolver("hpo.wandb_offline", lambda: not wants_online(), replace=True)


def list_experiments(config_dir: Path | None = None) -> list[str]:
    """Names of the experiments found on Hydra's search path (``experiment/*.yaml``).

    Raises:
        ConfigError: ``config_dir`` is not a folder.
    """
    search = _search_path(config_dir)
    with initialize_config_module(version_base="1.3", config_module=CONFIG_MODULE):
        return _group_options("experiment", search)


def compose(
    name: str | None = None,
    overrides: Sequence[str] = (),
    config_dir: Path | None = None,
    *,
    validate: bool = True,
) -> DictConfig:
    """Compose the config of experiment ``name`` with ``overrides`` (Hydra override syntax).

    Args:
        name: An experiment in ``conf/experiment/``; ``None`` composes the bare defaults.
        overrides: Overrides such as ``model.hidden_dim=256`` or ``model/optimizer=sgd``.
        config_dir: A user's config folder, searched after the packaged one: it may add groups
            and options (``experiment/``, ``model/``, ``search_space/``...) and override ours.
        validate: Check each override first (one-line errors). Trials skip it: their overrides
            were checked when the study was made, and checking costs twice the composition.

    Returns:
        The composed config, interpolations unresolved.

    Raises:
        ConfigError: An unknown experiment, group option or key, a value of the wrong type, or a
            malformed override.
    """
    prefix = [] if name is None else [f"experiment={name}"]
    return compose_overrides([*prefix, *overrides], config_dir, validate=validate)


def compose_overrides(
    overrides: Sequence[str], config_dir: Path | None = None, *, validate: bool = True
) -> DictConfig:
    """Validate (unless told not to) then compose the root config with raw Hydra overrides.

    Raises:
        ConfigError: See ``compose``.
    """
    search = _search_path(config_dir)
    if GlobalHydra.instance().is_initialized():
        return _compose_checked(overrides, search, validate)
    with initialize_config_module(version_base="1.3", config_module=CONFIG_MODULE):
        return _compose_checked(overrides, search, validate)


def first_job(overrides: Sequence[str]) -> list[str]:
    """The overrides of a Hydra multirun's first job: each sweep (``a=1,2``) at its first value.

    Checking them checks every key, and each sweep's first value, before Hydra starts the jobs.
    A sweep that cannot be enumerated (``interval(...)``, ``glob(...)``) is left out.

    Raises:
        ConfigError: A malformed override.
    """
    first: list[str] = []
    for override in _parse(overrides):
        if not override.is_sweep_override():
            first.append(override.input_line or "")
            continue
        try:
            value = next(iter(override.sweep_string_iterator()), None)
        except HydraException:
            continue
        if value is not None:
            first.append(f"{override.get_key_element()}={value}")
    return first


def override_keys(overrides: Sequence[str]) -> list[str]:
    """The key or group each override sets (``model.depth``, ``model/optimizer``), in order.

    Raises:
        ConfigError: A malformed override.
    """
    return [override.key_or_group for override in _parse(overrides)]


def _search_path(config_dir: Path | None) -> list[str]:
    """Hydra's own ``hydra.searchpath`` override: the packaged tree first, then the user's."""
    if config_dir is None:
        return []
    if not config_dir.is_dir():
        what = "is a file, not a folder" if config_dir.exists() else "does not exist"
        raise ConfigError(f"config folder `{config_dir}` {what} (`--config-dir`).")
    return [f"hydra.searchpath=[file://{config_dir.resolve()}]"]


def _compose_checked(overrides: Sequence[str], search: list[str], validate: bool) -> DictConfig:
    if not validate:
        return _compose([*search, *overrides])
    parsed = _parse(overrides)
    groups = [o for o in parsed if _group_options(o.key_or_group, search)]
    for override in groups:
        _check_group_choice(override, search)
    # With Hydra's own node, so that `hydra.run.dir=...` and the like are checked, not refused.
    base = _compose([*search, *(o.input_line or "" for o in groups)], with_hydra=True)
    for override in parsed:
        if override not in groups and not (override.is_add() or override.is_force_add()):
            _check_value(base, override)
    composed = _compose([*search, *overrides])
    _check_interpolations(composed)
    return composed


def _check_interpolations(cfg: DictConfig) -> None:
    """A ``${key}`` that names no key, or is malformed, would fail every run: say so now.

    Other resolution errors pass: a resolver may need the running app (``${hydra:...}``).
    """
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except (InterpolationKeyError, GrammarParseError) as e:
        raise ConfigError(f"`{e.full_key}`: {str(e.msg).splitlines()[0]}.") from None
    except OmegaConfBaseException:
        pass


def _parse(overrides: Sequence[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides=list(overrides))
    except OverrideParseException as e:
        first_line = str(e).splitlines()[0]
        raise ConfigError(f"malformed override: {first_line}") from None


def _compose(overrides: list[str], *, with_hydra: bool = False) -> DictConfig:
    try:
        return hydra_compose(
            config_name=ROOT_CONFIG, overrides=overrides, return_hydra_config=with_hydra
        )
    except MissingConfigException as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    except yaml.YAMLError as e:  # a config file of the user's, most likely
        raise ConfigError(_yaml_problem(e)) from None
    except HydraException as e:
        lines = [line for line in str(e).splitlines() if line.strip()]
        raise ConfigError(" ".join(lines[:2])) from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Which file, which line, and what the YAML parser expected, in one line."""
    mark = getattr(error, "problem_mark", None)
    where = f"`{mark.name}` line {mark.line + 1}" if mark is not None else "a config file"
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context, start = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and start is not None:  # where the unfinished construct began
        problem += f" ({context} from line {start.line + 1})"
    return f"{where} is not valid YAML: {problem}."


def _group_options(group: str, search: list[str]) -> list[str]:
    loader = GlobalHydra.instance().config_loader()
    return sorted(loader.get_group_options(group, config_name=ROOT_CONFIG, overrides=search))


def _check_group_choice(override: Override, search: list[str]) -> None:
    if override.is_delete() or override.is_sweep_override():
        return
    group = override.key_or_group
    options = _group_options(group, search)
    choice = override.value()
    if choice is None:
        raise ConfigError(f"`{group}=null` is not an option; use `~{group}` to leave it out.")
    if choice not in options:
        noun = "experiment" if group == "experiment" else f"`{group}` option"
        raise ConfigError(f"unknown {noun} `{choice}`; choose one of: {', '.join(options)}.")


def _check_value(base: DictConfig, override: Override) -> None:
    key = override.key_or_group
    current = OmegaConf.select(base, key, default=_ABSENT, throw_on_resolution_failure=False)
    if current is _ABSENT:
        parent, _, _ = key.rpartition(".")
        node = OmegaConf.select(base, parent) if parent else base
        valid = sorted(str(k) for k in node) if isinstance(node, DictConfig) else []
        where = f" under `{parent}`" if parent else ""
        hint = f"; valid keys{where}: {', '.join(valid)}" if valid else ""
        raise ConfigError(f"unknown config key `{key}`{hint}. Use `+{key}=...` to add a new key.")
    if override.is_delete() or override.is_sweep_override():
        return
    value = override.value()
    if not _same_kind(current, value):
        raise ConfigError(
            f"`{key}` expects {_kind(current)} (default {current!r}), "
            f"got {value!r} ({_kind(value)})."
        )


# (kind of the default, kinds that may replace it); bool comes before int, its base class.
_COMPATIBLE: tuple[tuple[type, tuple[type, ...]], ...] = (
    (bool, (bool,)),
    (int, (int,)),
    (float, (int, float)),
    (DictConfig, (dict,)),
    (ListConfig, (list,)),
)


def _same_kind(current: Any, value: Any) -> bool:
    """Whether ``value`` may replace ``current``: numbers widen int -> float, null always fits."""
    if current is None or value is None or isinstance(current, str):
        return True
    if isinstance(value, str) and value.startswith("${"):
        return True
    if isinstance(value, bool) != isinstance(current, bool):
        return False
    for kind, accepted in _COMPATIBLE:
        if isinstance(current, kind):
            return isinstance(value, accepted)
    return True


def _kind(value: Any) -> str:
    if isinstance(value, DictConfig | dict):
        return "a mapping"
    if isinstance(value, ListConfig | list):
        return "a list"
    return type(value).__name__
