"""G2A-VReID, AG-VPReID, LS-VID and DukeMTMC-VideoReID on generated miniatures of their published layouts:
counts per split, platform and camera ids, protocol selection, and one clear error per missing file or folder."""

import shutil
from pathlib import Path

import pytest

from typer.testing import CliRunner

from farreid.cli import app
from farreid.config import load_config
from farreid.data import build_dataset, build_dataset_from_config
from farreid.errors import FarreidError
from test_data_loaders import write_tracklet


# --- G2A-VReID (MARS-style info/ tables; camera 1 ground, camera 2 UAV) ------------------------------------------

def make_g2avreid(root: Path, a2g: bool = True) -> Path:
    """3 train identities, 2 test identities; every identity has one ground and one aerial tracklet (v2 names)."""
    names = {"train": [], "test": []}
    rows = {"train": [], "test": []}
    for split, pids in (("train", (1, 2, 3)), ("test", (10, 11))):
        for pid in pids:
            for cam in (1, 2):
                frames = [f"{pid:05d}C{cam}T0001F{f:03d}.jpg" for f in range(1, 4)]
                write_tracklet(root / f"bbox_{split}" / f"{pid:05d}", frames)
                first = len(names[split]) + 1
                names[split] += frames
                rows[split].append(f"{first},{first + 2},{pid},{cam}")
    info = root / "info"
    info.mkdir()
    for split in ("train", "test"):
        (info / f"{split}_name.txt").write_text("\n".join(names[split]) + "\n")
        (info / f"tracks_{split}_info.csv").write_text("\n".join(rows[split]) + "\n")
    (info / "query_IDX.csv").write_text("1\n3\n")  # the ground (camera 1) tracks of the test identities
    if a2g:
        (info / "query_IDX_A2G.csv").write_text("2\n4\n")
    return root


def test_g2avreid_counts_platforms_and_both_directions(tmp_path):
    ds = build_dataset("g2avreid", make_g2avreid(tmp_path))
    assert list(ds.protocols) == ["G2A", "A2G"]
    assert len(ds.train) == 6 and ds.num_train_pids == 3 and ds.train_raw_pids == (1, 2, 3)
    assert {(t.camid, t.platform) for t in ds.train} == {(0, "ground"), (1, "aerial")}
    g2a, a2g = ds.protocol("G2A"), ds.protocol("A2G")
    assert [(t.pid, t.platform) for t in g2a.query] == [(10, "ground"), (11, "ground")]
    assert [(t.pid, t.platform) for t in g2a.gallery] == [(10, "aerial"), (11, "aerial")]
    assert {t.platform for t in a2g.query} == {"aerial"} and {t.platform for t in a2g.gallery} == {"ground"}
    assert g2a.query[0].name == "00010C1T0001" and len(g2a.query[0].frames) == 3
    assert g2a.query[0].frames[0].endswith("bbox_test/00010/00010C1T0001F001.jpg")


def test_g2avreid_v1_release_has_only_g2a(tmp_path):
    root = make_g2avreid(tmp_path, a2g=False)
    assert list(build_dataset("g2avreid", root).protocols) == ["G2A"]
    with pytest.raises(FarreidError, match="missing table query_IDX_A2G .*query_IDX_A2G.mat"):
        build_dataset("g2avreid", root, protocol="A2G")
    (root / "info" / "query_IDX.csv").write_text("1\n2\n")  # a ground and an aerial track: no ground camera
    with pytest.raises(FarreidError, match=r"G2A queries .* come from cameras \[1, 2\]"):
        build_dataset("g2avreid", root)
    (root / "info" / "test_name.txt").write_text("")
    with pytest.raises(FarreidError, match="frame list .*test_name.txt is empty"):
        build_dataset("g2avreid", root, load_train=False)


# --- AG-VPReID (train/ + case1/case2 folders; C0-C3 ground, C4-C5 UAV) --------------------------------------------

def make_agvpreid(root: Path, anonymised_test: bool = False) -> Path:
    for pid, cams in ((3, (0, 4)), (8, (2, 5))):
        for k, cam in enumerate(cams):
            write_tracklet(root / "train" / f"{pid:04d}" / f"T{k}", [f"P{pid:04d}T{k}C{cam}E0F{f:03d}.jpg" for f in range(3)])
    for case, (qcam, gcam) in {"case1_aerial_to_ground": (4, 1), "case2_ground_to_aerial": (3, 5)}.items():
        for part, cam in (("query", qcam), ("gallery", gcam)):
            for pid in (20, 21, 22):
                tracklet = f"{part[0]}{pid}C{cam}"
                folder = root / case / part / (tracklet if anonymised_test else f"{pid:04d}/{tracklet}")
                write_tracklet(folder, [f"X{pid}C{cam}E1F{f:03d}.jpg" for f in range(2)])
    (root / "attributes").mkdir()
    return root


def test_agvpreid_counts_platforms_and_selected_directions(tmp_path):
    root = make_agvpreid(tmp_path)
    ds = build_dataset("agvpreid", root)
    assert list(ds.protocols) == ["A2G", "G2A"] and len(ds.train) == 4 and ds.num_train_pids == 2
    assert sorted((t.camid, t.platform) for t in ds.train) == [(0, "ground"), (2, "ground"), (4, "aerial"),
                                                                (5, "aerial")]
    a2g = ds.protocol("A2G")
    assert {t.platform for t in a2g.query} == {"aerial"} and {t.platform for t in a2g.gallery} == {"ground"}
    assert [t.pid for t in a2g.query] == [20, 21, 22] and a2g.query[0].name == "q20C4"
    cfg = load_config(None, ["data.dataset=agvpreid", f"data.root={root}", "data.protocol=G2A"])
    assert list(build_dataset_from_config(cfg.data).protocols) == ["G2A"]
    assert list(build_dataset("agvpreid", root, protocol="G2A,A2G").protocols) == ["A2G", "G2A"]
    with pytest.raises(FarreidError, match="unknown AG-VPReID protocol 'A2A'; choose all, A2G, G2A"):
        build_dataset("agvpreid", root, protocol="A2A")


def test_agvpreid_anonymised_challenge_test_folders(tmp_path):
    root = make_agvpreid(tmp_path, anonymised_test=True)
    ds = build_dataset("agvpreid", root, load_train=False)
    assert len(ds.train) == 0 and {t.pid for t in ds.protocol("G2A").gallery} == {-1}
    shutil.rmtree(root / "case2_ground_to_aerial" / "gallery")
    (root / "case2_ground_to_aerial" / "gallery").mkdir()
    with pytest.raises(FarreidError, match="empty AG-VPReID G2A gallery folder: .*case2_ground_to_aerial/gallery"):
        build_dataset("agvpreid", root)
    shutil.rmtree(root / "train")
    with pytest.raises(FarreidError, match="missing AG-VPReID train folder: .*train is not a folder"):
        build_dataset("agvpreid", root)


# --- LS-VID (list_sequence/*.txt + test/data/info_test) -----------------------------------------------------------

def make_lsvid(root: Path, tf_clip_layout: bool = False) -> Path:
    lists = root / ("info/list_sequence" if tf_clip_layout else "list_sequence")
    index = root / ("info/data" if tf_clip_layout else "test/data")
    lists.mkdir(parents=True)
    index.mkdir(parents=True)
    lines = {"train": [], "test": []}
    spec = {"train": [(1, 1), (1, 3), (4, 2)], "test": [(7, 1), (7, 5), (9, 2), (9, 15), (-1, 4)]}
    for split, seqs in spec.items():
        for k, (pid, cam) in enumerate(seqs):
            folder = f"tracklet_{split}/{abs(pid):04d}"
            stem = f"{abs(pid):04d}_{k}_{cam:02d}_{k:04d}"
            write_tracklet(root / folder, [f"{stem}_{f:03d}.jpg" for f in range(3)])
            lines[split].append(f"{folder}/{stem} {pid}")
        (lists / f"list_seq_{split}.txt").write_text("\n".join(lines[split]) + "\n")
    (index / "info_test.csv").write_text("1\n3\n")
    return root


@pytest.mark.parametrize("tf_clip_layout", [False, True])
def test_lsvid_counts_and_cameras(tmp_path, tf_clip_layout):
    ds = build_dataset("lsvid", make_lsvid(tmp_path, tf_clip_layout))
    assert len(ds.train) == 3 and ds.num_train_pids == 2 and [t.camid for t in ds.train] == [0, 2, 1]
    test = ds.protocol("test")
    assert [t.pid for t in test.query] == [7, 9] and [t.pid for t in test.gallery] == [7, 9]  # pid -1 left out
    assert [t.camid for t in test.gallery] == [4, 14] and len(test.query[0].frames) == 3
    assert test.query[0].name == "tracklet_test/0007/0007_0_01_0000" and {t.platform for t in ds.train} == {"ground"}


@pytest.mark.parametrize("damage, message", [
    (lambda r: shutil.rmtree(r / "list_sequence"), "missing LS-VID sequence lists"),
    (lambda r: (r / "test/data/info_test.csv").unlink(), "missing LS-VID query index .*info_test.mat"),
    (lambda r: (r / "list_sequence/list_seq_test.txt").write_text(""), "list_seq_test.txt is empty"),
    (lambda r: (r / "list_sequence/list_seq_train.txt").write_text("tracklet_train/0001/nothing 1\n"),
     "matches no frame"),
    (lambda r: (r / "test/data/info_test.csv").write_text("9\n"), "must list rows 1..5"),
])
def test_lsvid_missing_or_empty_split_files(tmp_path, damage, message):
    root = make_lsvid(tmp_path)
    damage(root)
    with pytest.raises(FarreidError, match=message):
        build_dataset("lsvid", root)


def test_lsvid_hdf5_index_needs_h5py_or_a_conversion(tmp_path):
    root = make_lsvid(tmp_path)
    (root / "test/data/info_test.csv").unlink()
    (root / "test/data/info_test.mat").write_bytes(b"\x89HDF\r\n\x1a\n")
    try:
        import h5py  # noqa: F401
    except ImportError:
        with pytest.raises(FarreidError, match="needs h5py .*info_test.csv"):
            build_dataset("lsvid", root)
    else:
        pytest.skip("h5py is installed; the .mat path is h5py's")


# --- DukeMTMC-VideoReID (train/query/gallery/<pid>/<tracklet>/) ------------------------------------------------------

def make_dukevideo(root: Path) -> Path:
    base = root / "DukeMTMC-VideoReID"
    for split, spec in {"train": [(1, 1), (1, 2), (5, 3)], "query": [(7, 1), (8, 4)],
                        "gallery": [(7, 2), (8, 5), (8, 6), (900, 8)]}.items():
        for k, (pid, cam) in enumerate(spec):
            form = "{p:04d}_C{c}_F{f:04d}_X{x}.jpg" if k % 2 == 0 else "{p:04d}C{c}F{f:04d}X{x}.jpg"
            write_tracklet(base / split / f"{pid:04d}" / f"{k + 1:04d}",
                           [form.format(p=pid, c=cam, f=f, x=30000 + f) for f in range(1, 4)])
    return root


def test_dukevideo_counts_cameras_and_parent_folder(tmp_path):
    ds = build_dataset("dukevideo", make_dukevideo(tmp_path))
    assert ds.root == str(tmp_path / "DukeMTMC-VideoReID")
    assert len(ds.train) == 3 and ds.num_train_pids == 2 and [t.camid for t in ds.train] == [0, 1, 2]
    test = ds.protocol("test")
    assert [t.name for t in test.query] == ["0007/0001", "0008/0002"] and [t.camid for t in test.query] == [0, 3]
    assert test.gallery.num_pids == 3 and [t.camid for t in test.gallery] == [1, 4, 5, 7]  # 900: a distractor


def test_dukevideo_missing_or_empty_split_folder(tmp_path):
    root = make_dukevideo(tmp_path) / "DukeMTMC-VideoReID"
    shutil.rmtree(root / "gallery")
    with pytest.raises(FarreidError, match="missing DukeMTMC-VideoReID gallery folder: .*gallery"):
        build_dataset("dukevideo", root)
    (root / "gallery").mkdir()
    with pytest.raises(FarreidError, match="empty DukeMTMC-VideoReID gallery folder: .*gallery holds nothing"):
        build_dataset("dukevideo", root)


# --- farreid data stats on each miniature -----------------------------------------------------------------------

@pytest.mark.parametrize("name, make, rows", [
    ("g2avreid", make_g2avreid, {"train": (3, 6), "G2A query": (2, 2), "G2A gallery": (2, 2), "A2G query": (2, 2)}),
    ("agvpreid", make_agvpreid, {"train": (2, 4), "A2G query": (3, 3), "G2A gallery": (3, 3)}),
    ("lsvid", make_lsvid, {"train": (2, 3), "test query": (2, 2), "test gallery": (2, 2)}),
    ("dukevideo", make_dukevideo, {"train": (2, 3), "test query": (2, 2), "test gallery": (3, 4)}),
])
def test_data_stats_counts(tmp_path, name, make, rows):
    result = CliRunner().invoke(app, ["data", "stats", "--dataset", name, "--root", str(make(tmp_path))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for split, (ids, tracklets) in rows.items():
        line = next(line for line in lines if line.startswith(split + " "))
        assert line[len(split):].split()[:2] == [str(ids), str(tracklets)], line
