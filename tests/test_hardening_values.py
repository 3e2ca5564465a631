"""Values: every key's and option's allowed range comes from the schema, and every command checks it before work."""

import pytest

from _hardening import cli_error
from farreid.config import ConfigError, check_option, load_config, validate_config
from farreid.config.schema import CHOICES, OPTIONS, POSITIVE, RANGES, Config

# (command line, words the one-line error must contain); no paths need to exist: the checks come first.
CASES = {
    "flip probability > 1": (["config", "-c", "demo_tiny", "data.aug.flip_prob=1.5"], "data.aug.flip_prob"),
    "erase area min > max": (["config", "-c", "demo_tiny", "data.aug.erase_min_area=0.5"], "erase_max_area"),
    "negative workers": (["config", "data.workers=-1"], "data.workers"),
    "negative show_queries": (["config", "eval.show_queries=-2"], "eval.show_queries"),
    "negative n_ctx": (["config", "model.text.n_ctx=-2"], "model.text.n_ctx"),
    "height below patch": (["config", "-c", "demo_tiny", "model.image_size=[8,48]"], "patch size"),
    "unknown dataset": (["config", "data.dataset=nosuch"], "registered"),
    "missing interpolation": (["config", "name=${nope}"], "nope"),
    "unset environment variable": (["config", "name=${oc.env:FARREID_SURELY_UNSET}"], "FARREID_SURELY_UNSET"),
    "device tpu in config": (["config", "device=tpu"], "device"),
    "hue above 0.5": (["config", "data.aug.hue=0.7"], "data.aug.hue"),
    "degrade heights swapped": (["config", "data.aug.degrade_min_height=80"], "degrade_max_height"),
    "negative map_at": (["config", "eval.map_at=[10,-1]"], "eval.map_at"),
    "prompt depth 0": (["config", "model.pbp.depth=0"], "model.pbp.depth"),
    "prompt depth beyond the tower": (["config", "-c", "demo_tiny", "model.pbp.depth=40"], "depth"),
    "fine-tune more blocks than exist": (["config", "-c", "demo_tiny", "model.finetune_last_n=9"], "finetune_last_n"),
    "altitude bins not ascending": (["config", "model.pbp.altitude_bins=[40,20]"], "ascending"),
    "train: negative workers": (["train", "-c", "demo_tiny", "data.workers=-1"], "data.workers"),
    "eval: bad re-ranking lambda": (["eval", "-f", "nowhere", "eval.rerank.lambda_value=2"], "lambda_value"),
    "demo: bad override": (["demo", "--out", "nowhere", "data.aug.flip_prob=2"], "flip_prob"),
    "search --pictures -1": (["search", "-g", "g", "-q", "q", "--pictures", "-1"], "--pictures"),
    "search --chunk-rows 0": (["search", "-g", "g", "-q", "q", "--chunk-rows", "0"], "--chunk-rows"),
    "search --device tpu": (["search", "-g", "g", "-q", "q", "--device", "tpu"], "--device"),
    "search -k 0": (["search", "-g", "g", "-q", "q", "-k", "0"], "-k"),
    "search --lambda 1.5": (["search", "-g", "g", "-q", "q", "--lambda", "1.5"], "--lambda"),
    "search --platform sky": (["search", "-g", "g", "-q", "q", "--platform", "sky"], "--platform"),
    "extract --shard-size 0": (["extract", "--checkpoint", "c.pt", "-i", "i", "-o", "o", "--shard-size", "0"], "--shard-size"),
    "extract --device tpu": (["extract", "--checkpoint", "c.pt", "-i", "i", "-o", "o", "--device", "tpu"], "--device"),
    "extract --precision fp8": (["extract", "--checkpoint", "c.pt", "-i", "i", "-o", "o", "--precision", "fp8"], "--precision"),
    "extract --workers -1": (["extract", "--checkpoint", "c.pt", "-i", "i", "-o", "o", "--workers", "-1"], "--workers"),
    "extract --batch-size 0": (["extract", "--checkpoint", "c.pt", "-i", "i", "-o", "o", "--batch-size", "0"], "--batch-size"),
    "export --opset 3": (["export", "onnx", "--checkpoint", "c.pt", "-o", "m.onnx", "--opset", "3"], "--opset"),
    "synth --stress 1.5": (["data", "synth", "-o", "out", "--stress", "1.5"], "--stress"),
    "export --atol 0": (["export", "onnx", "--checkpoint", "c.pt", "-o", "m.onnx", "--atol", "0"], "--atol"),
}


@pytest.mark.parametrize("argv, words", CASES.values(), ids=CASES.keys())
def test_out_of_range_values_are_one_error_before_work(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = cli_error(argv, capsys)
    assert words in line
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_every_ranged_key_exists_and_its_default_is_allowed():
    """The tables name real keys, each key has one entry, and the defaults and shipped recipes pass."""
    from farreid.config import schema_keys

    keys = set(schema_keys())
    tables = [set(CHOICES), set(POSITIVE), set(RANGES)]
    assert all(t <= keys for t in tables)
    assert sum(len(t) for t in tables) == len(set().union(*tables))  # a key's rule lives in one place
    validate_config(Config())
    for recipe in ("demo_tiny", "detreidx_vitb16", "detreidx_vitl14"):
        load_config(recipe)


def test_option_checks_go_through_the_schema():
    assert check_option("eval.show_queries", 0) == 0 and check_option("search --chunk-rows", 5) == 5
    with pytest.raises(ConfigError, match="--chunk-rows = 0 must be >= 1"):
        check_option("search --chunk-rows", 0)
    assert set(OPTIONS) >= {"search --chunk-rows", "export onnx --opset"}
