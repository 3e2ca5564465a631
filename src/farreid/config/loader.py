"""Load a recipe, apply dotted overrides, validate against the schema, save it beside a run.

Merging and type checking are OmegaConf's (structured configs); this module adds what a user needs on top:
recipes found by name, `_base_` inheritance between recipes, and one clear error naming the bad key with
the closest valid one.
"""

from __future__ import annotations

import difflib
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from farreid.errors import FarreidError
from farreid.utils.io import read_text_file
from farreid.config.schema import CHOICES, OPTIONS, POSITIVE, RANGES, RULES, Config, Range

RECIPE_DIR = Path(__file__).resolve().parent.parent / "configs"
BASE_KEY = "_base_"


class ConfigError(FarreidError, ValueError):
    """A configuration problem a user can fix; the message names the file or key."""


def available_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def resolve_recipe(path_or_name: str | Path) -> Path:
    """A path to a YAML file, or the name of a shipped recipe (`demo_tiny`)."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    shipped = RECIPE_DIR / f"{p.stem}.yaml"
    if p.suffix in ("", ".yaml", ".yml") and len(p.parts) <= 2 and shipped.is_file() and not p.exists():
        return shipped
    raise ConfigError(
        f"config file not found: {path_or_name} "
        f"(shipped recipes: {', '.join(available_recipes()) or 'none'}; pass a path or one of these names)"
    )


def schema_keys(node: Any = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema, e.g. `model.adapter.bottleneck`."""
    keys = []
    for f in fields(node):
        key = f"{prefix}{f.name}"
        keys.append(key)
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default):
            keys.extend(schema_keys(type(default), key + "."))
    return keys


def _unknown_key_error(full_key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(full_key, schema_keys(), n=1, cutoff=0.6)
    if not close:  # a typo in the last part only: compare against siblings
        parent, _, leaf = full_key.rpartition(".")
        siblings = [k for k in schema_keys() if k.rpartition(".")[0] == parent]
        leaves = difflib.get_close_matches(leaf, [k.rpartition(".")[2] for k in siblings], n=1, cutoff=0.5)
        close = [f"{parent}.{leaves[0]}" if parent else leaves[0]] if leaves else []
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{full_key}' in {source}{hint}")


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """Read one recipe and the chain of `_base_` recipes it names (paths relative to the file)."""
    if path in seen:
        raise ConfigError(f"recipe inheritance loops back to {path}")
    try:
        with read_text_file(path) as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    if not base_path.is_file():
        base_path = resolve_recipe(base)
    merged = OmegaConf.merge(_read_yaml(base_path, seen + (path,)), data)
    return OmegaConf.to_container(merged)  # type: ignore[return-value]


def _merge(cfg: DictConfig, other: DictConfig | dict, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(cfg, other)  # type: ignore[return-value]
    except ConfigKeyError as exc:
        raise _unknown_key_error(str(exc.full_key), source) from None
    except ValidationError as exc:
        reason = str(exc.msg).splitlines()[0]
        raise ConfigError(f"bad value for config key '{exc.full_key}' in {source}: {reason}") from None
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid config in {source}: {exc}") from None


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> DictConfig:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}' must look like key=value, e.g. model.pooling=mean")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot parse overrides {list(overrides)}: {exc}") from None


def load_config(
    path_or_name: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: Config | None = None,
) -> Config:
    """Schema defaults (or `base`, e.g. a checkpoint's saved config) <- recipe (with its `_base_` chain) <-
    dotted overrides; returns a typed `Config`."""
    cfg: DictConfig = OmegaConf.structured(Config if base is None else base)
    if path_or_name is not None:
        path = resolve_recipe(path_or_name)
        cfg = _merge(cfg, _read_yaml(path), str(path))
    if overrides:
        cfg = _merge(cfg, parse_overrides(overrides), "the command-line overrides")
    source = str(path_or_name) if path_or_name else "the defaults"
    _check_values(cfg, source)
    return _to_object(cfg, source)


def _to_object(cfg: DictConfig, source: str) -> Config:
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid config in {source}: {str(exc).splitlines()[0]}") from None


def _rule_of(key: str) -> tuple[str, Any] | None:
    """('choices', values) or ('range', Range) for a config key, from the schema's tables."""
    if key in CHOICES:
        return "choices", CHOICES[key]
    if key in POSITIVE:
        return "range", Range(0, open_low=True)
    if key in RANGES:
        return "range", RANGES[key]
    return None


def _bad_value(value: Any, rule: tuple[str, Any]) -> str | None:
    """Why `value` (or an item of a list value) breaks `rule`, or None."""
    kind, allowed = rule
    for v in value if isinstance(value, (list, tuple)) or OmegaConf.is_list(value) else [value]:
        if kind == "choices" and v not in allowed:
            shown = [*allowed[:4], "...", allowed[-1]] if len(allowed) > 8 else allowed
            return f"{v!r} must be one of {', '.join(map(str, shown))}"
        if kind == "range" and v not in allowed:
            return f"{v!r} {allowed}"
    return None


def check_option(key: str, value: Any, option: str | None = None) -> Any:
    """Check a value a command takes on the command line against the schema: `key` is the config key the option
    sets (`eval.show_queries` for `--pictures`) or a command option of `OPTIONS` (`search --chunk-rows`)."""
    if key in OPTIONS:
        rule = ("range" if isinstance(OPTIONS[key], Range) else "choices", OPTIONS[key])
    else:
        rule = _rule_of(key)
    if rule is None:
        raise KeyError(f"the schema has no rule for {key!r}")
    if value is not None:
        reason = _bad_value(value, rule)
        if reason:
            name = option or (key.rpartition(" ")[2] if key in OPTIONS else f"config key '{key}'")
            raise ConfigError(f"{name} = {reason}")
    return value


def _check_values(cfg: DictConfig, source: str, saved: bool = False) -> None:
    """Reject values outside a key's allowed set or range, and broken relations between keys (OmegaConf checks
    types only); `saved` marks a configuration read from a checkpoint."""
    try:
        for key in (*CHOICES, *POSITIVE, *RANGES):
            reason = _bad_value(OmegaConf.select(cfg, key, throw_on_missing=True), _rule_of(key))  # type: ignore[arg-type]
            if reason:
                raise ConfigError(f"config key '{key}' = {reason} (from {source} or overrides)")
        for rule in RULES:
            if (rule.saved or not saved) and not rule.holds(cfg):
                value = OmegaConf.select(cfg, rule.key)
                raise ConfigError(f"config key '{rule.key}' = {value!r} {rule.message(cfg)} (from {source} or overrides)")
    except OmegaConfBaseException as exc:  # ${nope}, ${oc.env:UNSET}, a missing value
        raise ConfigError(f"invalid config in {source}: {str(exc).splitlines()[0]}") from None


def validate_config(cfg: Config | DictConfig, source: str = "the configuration") -> None:
    """The schema's checks on a configuration built in Python (e.g. with `dataclasses.replace`)."""
    _check_values(cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg), source)


def config_to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def config_to_dict(cfg: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg))  # type: ignore[return-value]


def config_from_dict(data: dict, source: str = "a saved config") -> Config:
    """Rebuild a typed `Config` from a plain mapping (e.g. one stored inside a checkpoint)."""
    cfg = _merge(OmegaConf.structured(Config), data, source)
    _check_values(cfg, source, saved=True)
    return _to_object(cfg, source)
