"""Typed configuration: dataclass schema, YAML recipes, dotted overrides."""

from farreid.config.loader import (
    ConfigError,
    available_recipes,
    check_option,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    load_config,
    resolve_recipe,
    schema_keys,
    validate_config,
)
from farreid.config.schema import Config

__all__ = [
    "Config",
    "ConfigError",
    "available_recipes",
    "check_option",
    "config_from_dict",
    "config_to_dict",
    "config_to_yaml",
    "load_config",
    "resolve_recipe",
    "schema_keys",
    "validate_config",
]
