"""The main job end to end at toy size, and the report a person opens afterwards."""

import base64
import io
import json
from html.parser import HTMLParser

import pytest
from PIL import Image

from farreid.demo import demo_config, run_demo
from farreid.errors import FarreidError


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.headings, self.external = [], 0, [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "table":
            self.tables += 1
        elif tag == "h2":
            self._in_h2 = True
        for key in ("src", "href"):
            if attrs.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(attrs[key])

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)


TOY = dict(scale=0.05, num_ids=24, console=False,
           overrides=["data.val_ids=4", "data.ids_per_batch=4", "data.test_frames=4", "eval.batch_size=32"])
ROWS = ["colour_histogram", "untrained", "pretrained_frozen", "from_scratch", "trained", "trained_rerank", "mean_pooling", "no_prompts",
        "frozen_backbone", "no_degradation"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"), **TOY)


def test_demo_runs_end_to_end(demo):
    assert [v.name for v in demo.variants] == ROWS
    for v in demo.variants:
        assert [p.name for p in v.result.protocols] == ["A2G", "G2A", "A2A"]
        assert all(p.rank is not None and p.rank.num_valid > 0 for p in v.result.protocols)
        assert (v.eval_dir / "submission.csv").is_file() and (v.eval_dir / "metrics.json").is_file()
    lines = demo.table.splitlines()
    assert lines[0].split()[:3] == ["model", "A2G", "mAP"] and len(lines) == 2 + len(demo.variants)


def test_summary_json_holds_every_row_as_fractions(demo):
    summary = json.loads(demo.summary.read_text())
    assert summary["seconds"] > 0 and [r["name"] for r in summary["rows"]] == ROWS
    for row in summary["rows"]:
        for metric in ("mAP", "R1"):
            assert set(row[metric]) == {"A2G", "G2A", "A2A", "overall"}
            assert all(0.0 <= x <= 1.0 for x in row[metric].values())
    by_name = {r["name"]: r for r in summary["rows"]}
    variant = next(v for v in demo.variants if v.name == "trained")
    assert by_name["trained"]["mAP"]["A2G"] == next(p.rank.mAP for p in variant.result.protocols if p.name == "A2G")
    # the attention check covers the fault kinds of the stressed data, and the zero-shot check the shipped towers
    assert "clean" in summary["attention"] and len(summary["attention"]) >= 3
    assert summary["zero_shot"]["top_mAP"] > summary["zero_shot"]["top_chance_mAP"]


def test_report_has_its_tables_and_pictures(demo):
    page = _Page()
    page.feed(demo.report.read_text())
    assert page.headings == ["What ran", "Results (%)", "The starting point: a vision-language model",
                             "Attention pooling on faulty frames", "Data", "Training", "Ranked results",
                             "How this was produced"]
    assert page.tables >= 6  # results, zero-shot, attention, data statistics, provenance facts, package versions
    assert not page.external  # opens offline: no CDN, no remote pictures
    # attention strips, sample frames, loss, learning rate, validation mAP, 3 CMC plots, ranked strips: real PNGs
    assert len(page.images) >= 10
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as img:
            assert img.width > 50 and img.height > 50


def test_demo_reuses_its_data(demo, caplog):
    from farreid.demo import ensure_data

    stamp = (demo.out_dir / "data" / "synthetic.json").stat().st_mtime_ns
    ensure_data(demo.out_dir / "data", seed=0, num_ids=24)
    assert (demo.out_dir / "data" / "synthetic.json").stat().st_mtime_ns == stamp


def test_scale_multiplies_the_epochs(tmp_path):
    short, long = demo_config(tmp_path, scale=0.25), demo_config(tmp_path, scale=2)
    assert short.train.stage2.epochs < long.train.stage2.epochs
    assert long.train.stage2.epochs == 2 * demo_config(tmp_path).train.stage2.epochs
    for bad in (0, -1, float("nan")):
        with pytest.raises(FarreidError, match="--scale must be a number > 0"):
            demo_config(tmp_path, scale=bad)


def test_ablation_rows_change_one_thing(tmp_path):
    from farreid.config import config_to_dict
    from farreid.demo import ABLATIONS, TRAINED, row_config
    from farreid.engine.checkpoint import flatten

    base = flatten(config_to_dict(demo_config(tmp_path)))
    for row in ABLATIONS:
        cfg = flatten(config_to_dict(row_config(tmp_path, row, tmp_path / "stage1.pt")))
        changed = {k for k in base if base[k] != cfg[k]} - {"name", "train.stages", "train.stage1_checkpoint"}
        assert len(changed) == 1, (row.name, changed)
    assert demo_config(tmp_path).model.pretrained == "synthetic-people-tiny" and not TRAINED.stage2_only


@pytest.mark.slow
def test_default_demo_beats_the_baselines_on_every_protocol(tmp_path):
    """The default demo, as `make demo` runs it: the toy test above covers the pipeline, this one what it learns.
    The trained model beats the colour histogram, and pretrained start beats from-scratch by a wide margin."""
    result = run_demo(tmp_path, console=False)
    maps = {r["name"]: r["mAP"] for r in json.loads(result.summary.read_text())["rows"]}
    for name in ("A2G", "G2A", "A2A"):
        assert maps["trained"][name] > maps["colour_histogram"][name], (name, maps["trained"], maps["colour_histogram"])
        assert maps["trained"][name] > 1.25 * maps["from_scratch"][name], (name, maps["trained"], maps["from_scratch"])
