"""The synthetic DetReIDX-layout generator and the `farreid data synth / stats` commands."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import farreid
from farreid.cli import app
from farreid.data import build_dataset
from farreid.data.detreidx import parse_frame_name
from farreid.data.synthetic import generate, person_height_px
from farreid.errors import FarreidError

SMALL = dict(num_ids=6, frames=3, ground_tracklets=1, aerial_tracklets=1)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*.jpg")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "d"
    return root, generate(root, seed=4, **SMALL)


def test_generated_set_loads_as_detreidx_with_disjoint_identities(synth):
    root, summary = synth
    ds = build_dataset("detreidx", root)
    assert summary["train_ids"] == 3 and summary["test_ids"] == 3 and ds.num_train_pids == 3
    train_raw = set(ds.train_raw_pids)
    for proto in ds.protocols.values():
        assert train_raw.isdisjoint(t.pid for t in proto.query) and proto.query.num_pids == 3
    a2g, g2a, a2a = ds.protocol("A2G"), ds.protocol("G2A"), ds.protocol("A2A")
    assert {t.platform for t in a2g.query} == {"aerial"} and {t.platform for t in a2g.gallery} == {"ground"}
    assert {t.platform for t in g2a.query} == {"ground"} and {t.platform for t in g2a.gallery} == {"aerial"}
    assert {t.session for t in a2a.query} == {1} and {t.session for t in a2a.gallery} == {2}
    assert {t.camid for t in ds.train} == {0, 1, 2}
    assert all(t.altitude is not None and t.pitch in (30, 60, 90) for t in a2a.query)
    assert all(len(t.frames) == 3 for t in ds.train)


def test_frame_names_are_valid_detreidx_names(synth):
    root, _ = synth
    for path in list(root.rglob("*.jpg"))[:50]:
        fields = path.stem.split("_")
        info = parse_frame_name(path)
        if info.platform == "aerial":
            assert len(fields) == 24 and fields[-2] == f"S{info.session}"
        else:
            assert fields[7] in "FBL"


def test_same_seed_same_bytes_other_seed_other_bytes(synth, tmp_path):
    root, _ = synth
    again = tmp_path / "again"
    generate(again, seed=4, **SMALL)
    assert _digest(again) == _digest(root)
    other = tmp_path / "other"
    generate(other, seed=5, **SMALL)
    assert _digest(other) != _digest(root)


def test_aerial_crops_are_small_and_ground_crops_large(synth):
    from PIL import Image

    root, _ = synth
    ds = build_dataset("detreidx", root)
    sizes = {p: [Image.open(t.frames[0]).size[1] for t in ds.train if t.platform == p] for p in ("ground", "aerial")}
    assert min(sizes["ground"]) == 128 and max(sizes["aerial"]) <= 48
    assert person_height_px(5.8, 10) == 40 and person_height_px(120, 0) < 15


def test_anonymised_test_folders_and_overwrite_rules(tmp_path):
    root = tmp_path / "anon"
    summary = generate(root, seed=1, anonymised=True, **SMALL)
    ds = build_dataset("detreidx", root)
    assert {t.pid for t in ds.protocol("A2G").query} == {-1} and len(summary["test_labels"]) == 3 * 3
    with pytest.raises(FarreidError, match="already holds a synthetic data set"):
        generate(root, seed=1, **SMALL)
    generate(root, seed=1, overwrite=True, **SMALL)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    with pytest.raises(FarreidError, match="not empty"):
        generate(tmp_path / "mine", overwrite=True, **SMALL)
    assert (tmp_path / "mine" / "precious.txt").exists()


def test_cli_synth_then_stats_prints_the_table(tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(app, ["data", "synth", "--out", str(out), "--ids", "4", "--frames", "2",
                                 "--ground", "1", "--aerial", "1"])
    assert result.exit_code == 0, result.output
    assert "train" in result.output
    result = runner.invoke(app, ["data", "stats", "--dataset", "detreidx", "--root", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("train ") for line in lines) and any(line.startswith("A2A gallery") for line in lines)
    assert "aerial trk" in result.output
    result = runner.invoke(app, ["data", "stats", "-d", "detreidx", "-r", str(out), "--protocol", "A2G", "--verify"])
    assert result.exit_code == 0 and "verified" in result.output and "G2A" not in result.output


def test_cli_stats_bad_root_is_one_line_error(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(farreid.__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "farreid", "data", "stats", "-d", "detreidx", "-r",
                           str(tmp_path / "missing")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "missing DetReIDX root" in proc.stderr and "Traceback" not in proc.stderr


def test_stress_puts_recorded_faults_into_frames_and_leaves_clean_frames_as_they_were(tmp_path):
    from farreid.data.synthetic.generate import FAULT_KINDS

    opts = dict(num_ids=6, seed=4, frames=10, ground_tracklets=1, aerial_tracklets=1)
    plain = generate(tmp_path / "plain", **opts)
    stressed = generate(tmp_path / "stressed", stress=0.8, **opts)
    again = generate(tmp_path / "again", stress=0.8, **opts)
    assert "faults" not in plain and stressed["faults"] == again["faults"] and stressed["faults"]
    kinds = {k for ks in stressed["faults"].values() for k in ks}
    assert kinds == {"clean", *FAULT_KINDS}
    changed = same = 0
    for name, frame_kinds in stressed["faults"].items():
        folder_a = next((tmp_path / "plain").rglob(name))
        folder_b = next((tmp_path / "stressed").rglob(name))
        for kind, a, b in zip(frame_kinds, sorted(folder_a.iterdir()), sorted(folder_b.iterdir())):
            if kind == "clean":
                assert a.read_bytes() == b.read_bytes()
                same += 1
            else:
                changed += a.read_bytes() != b.read_bytes()
    assert same and changed
    with pytest.raises(FarreidError, match="stress"):
        generate(tmp_path / "bad", stress=1.5, **opts)
