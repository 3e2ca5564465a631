"""The main job end to end at toy size, and the report a person opens afterwards."""

import base64
import io
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


TOY = dict(minutes=0.05, num_ids=24, console=False,
           overrides=["data.val_ids=4", "data.ids_per_batch=4", "data.test_frames=4", "eval.batch_size=32"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"), **TOY)


def test_demo_runs_end_to_end(demo):
    names = [(v.label, v.pooling, v.rerank) for v in demo.variants]
    assert names == [("untrained", "attention", False), ("trained", "mean", False), ("trained", "mean", True),
                     ("trained", "attention", False), ("trained", "attention", True)]
    for v in demo.variants:
        assert [p.name for p in v.result.protocols] == ["A2G", "G2A", "A2A"]
        assert all(p.rank is not None and p.rank.num_valid > 0 for p in v.result.protocols)
        assert (v.eval_dir / "submission.csv").is_file() and (v.eval_dir / "metrics.json").is_file()
    lines = demo.table.splitlines()
    assert lines[0].split()[:3] == ["model", "pooling", "re-ranking"] and len(lines) == 2 + len(demo.variants)


def test_report_has_its_tables_and_pictures(demo):
    page = _Page()
    page.feed(demo.report.read_text())
    assert page.headings[:6] == ["What ran", "Results (%)", "Data", "Training", "Ranked results", "How this was produced"]
    assert page.tables >= 4  # results, data statistics, provenance facts, package versions
    assert not page.external  # opens offline: no CDN, no remote pictures
    # sample frames, loss, learning rate, validation mAP, 3 CMC plots, ranked strips: all real PNGs
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


def test_minutes_scale_the_epochs(tmp_path):
    short, long = demo_config(tmp_path, minutes=2), demo_config(tmp_path, minutes=16)
    assert short.train.stage2.epochs < long.train.stage2.epochs
    assert long.train.stage2.epochs == 2 * demo_config(tmp_path).train.stage2.epochs
    with pytest.raises(FarreidError, match="--minutes must be > 0"):
        demo_config(tmp_path, minutes=0)


@pytest.mark.slow
def test_default_demo_beats_the_untrained_model_on_every_protocol(tmp_path):
    """The default recipe, as `make demo` runs it (~7 min on 2 cores): the toy test above covers the pipeline,
    this one what it learns."""
    result = run_demo(tmp_path, console=False)
    maps = {(v.label, v.pooling, v.rerank): {p.name: p.rank.mAP for p in v.result.protocols} for v in result.variants}
    untrained, trained = maps["untrained", "attention", False], maps["trained", "attention", False]
    for name in ("A2G", "G2A", "A2A"):
        assert trained[name] > 1.5 * untrained[name], (name, trained[name], untrained[name])
