from pathlib import Path

import pytest

from farreid.config import (
    Config,
    ConfigError,
    available_recipes,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    load_config,
    schema_keys,
)


def test_defaults_are_typed():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.model.adapter.bottleneck == 256
    assert cfg.eval.rerank.k1 == 20


@pytest.mark.parametrize("name", ["demo_tiny", "detreidx_vitb16", "detreidx_vitl14"])
def test_shipped_recipes_load(name):
    assert name in available_recipes()
    cfg = load_config(name)
    assert cfg.name == name


def test_base_inheritance():
    cfg = load_config("detreidx_vitl14")
    assert cfg.model.backbone == "ViT-L/14"  # own value
    assert cfg.model.pbp.depth == 18
    assert cfg.model.pbp.length == 4  # inherited from the ViT-B/16 recipe
    assert cfg.model.image_size == [252, 126]


def test_round_trip(tmp_path: Path):
    cfg = load_config("detreidx_vitb16", ["model.pooling=mean", "data.aug.flip_prob=0.25", "train.stages=[stage2]"])
    assert cfg.model.pooling == "mean" and cfg.data.aug.flip_prob == 0.25 and cfg.train.stages == ["stage2"]
    saved = tmp_path / "config.yaml"
    saved.write_text(config_to_yaml(cfg))
    assert load_config(saved) == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_unknown_override_key_suggests_closest():
    with pytest.raises(ConfigError) as err:
        load_config("demo_tiny", ["model.adpter.bottleneck=64"])
    assert "model.adpter" in str(err.value) and "did you mean 'model.adapter'" in str(err.value)
    with pytest.raises(ConfigError, match="did you mean 'model.adapter.bottleneck'"):
        load_config(None, ["model.adapter.botleneck=64"])


def test_unknown_key_in_recipe_file(tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  roots: /x\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'data.roots' in .*r.yaml; did you mean 'data.root'"):
        load_config(recipe)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found: nowhere.yaml"):
        load_config("nowhere.yaml")


@pytest.mark.parametrize(
    "override, message",
    [
        ("seed=abc", "bad value for config key 'seed'"),
        ("model.pooling=max", "must be one of"),
        ("model.image_size=[0,128]", "must be > 0"),
        ("model.pooling", "must look like key=value"),
    ],
)
def test_bad_values(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_schema_keys_cover_nested():
    keys = schema_keys()
    assert "train.stage2.loss.triplet_margin" in keys and "data.aug.erase_prob" in keys


def test_configuration_reference_is_current():
    """docs/configuration.md is generated from the schema; regenerate it when the schema changes."""
    from pathlib import Path

    from farreid.config.reference import reference_markdown

    page = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert page.read_text() == reference_markdown(), "run: python -m farreid.config.reference > docs/configuration.md"
    assert "`model.pbp.key`" in page.read_text() and "one of: camera, platform, altitude, distance" in page.read_text()
