"""Typed configuration: dataclass schema, YAML recipes, dotted overrides.

The section dataclasses are also the parameter objects of the parts they configure (`ClipAugment(AugConfig())`,
`FarReID(ModelConfig(backbone="test"), num_classes=4)`): a setting is named once, in `schema.py`.
"""

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
from farreid.config.schema import (
    AdapterConfig,
    AugConfig,
    Config,
    DataConfig,
    EvalConfig,
    LossConfig,
    ModelConfig,
    PretrainConfig,
    PromptConfig,
    RerankConfig,
    Stage1Config,
    Stage2Config,
    TextConfig,
    TrainConfig,
)

__all__ = [
    "AdapterConfig",
    "AugConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "LossConfig",
    "ModelConfig",
    "PretrainConfig",
    "PromptConfig",
    "RerankConfig",
    "Stage1Config",
    "Stage2Config",
    "TextConfig",
    "TrainConfig",
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
