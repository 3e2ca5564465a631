"""Dataset loaders on small trees built in tmp: layouts, metadata, and one clear error per bad input."""

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from farreid.data import build_dataset, build_dataset_from_config, register_dataset
from farreid.data.detreidx import parse_frame_name
from farreid.data.tracklet import ReIDDataset, TrackletSet
from farreid.errors import FarreidError

AERIAL = "0004_23_10_2024_09_18_5.8_10_30_3_0_1_1_0_-1_-1_6_0_0_6_152_178_S{s}_{f}.jpg"
GROUND = "0004_M_25_{f:04d}.jpg"


def _image_bytes(fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 8), (120, 30, 200)).save(buf, format=fmt)
    return buf.getvalue()


JPEG, PNG = _image_bytes("JPEG"), _image_bytes("PNG")


def write_tracklet(folder: Path, names: list[str], data: bytes = JPEG) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(data)


def ground_names(n=3):
    return [GROUND.format(f=i) for i in range(n)]


def aerial_names(session=1, n=3):
    return [AERIAL.format(s=session, f=i) for i in range(n)]


def make_detreidx(root: Path, flat_test: bool = False) -> Path:
    for pid in (7, 3):
        write_tracklet(root / "train" / f"{pid:04d}" / f"{pid:04d}_0001", ground_names())
        write_tracklet(root / "train" / f"{pid:04d}" / f"{pid:04d}_0002", aerial_names(2))
    for case, (q, g) in {"case1_aerial_to_ground": ("a", "g"), "case2_ground_to_aerial": ("g", "a"),
                         "case3_aerial_to_aerial": ("a", "a")}.items():
        for part, kind in (("query", q), ("gallery", g)):
            names = ground_names() if kind == "g" else aerial_names(1 if part == "query" else 2)
            for pid in (11, 12):
                tracklet = f"{pid:04d}_{len(part)}{kind}"
                folder = root / case / part / (tracklet if flat_test else f"{pid:04d}/{tracklet}")
                write_tracklet(folder, names)
    return root


def test_parse_frame_name_ground_aerial_and_session_with_frame_index():
    assert parse_frame_name("0001_M_25_0003.jpg").platform == "ground"
    indoor = parse_frame_name("0004_M_25_175_70_W_0_F_0001.jpg")
    assert (indoor.platform, indoor.camid) == ("ground", 0)
    info = parse_frame_name(AERIAL.format(s=2, f=17))
    assert (info.platform, info.camid, info.session) == ("aerial", 2, 2)
    assert (info.altitude, info.distance, info.pitch) == (5.8, 10.0, 30.0)
    plain = parse_frame_name("0004_23_10_2024_09_18_40_80_30_3_0_1_S1.jpg")
    assert plain.session == 1 and plain.altitude == 40.0


@pytest.mark.parametrize("name, message", [
    ("0004_23_10_2024_09_18_x_10_30_3_S1.jpg", "drone height"),
    ("0004_23_10_2024_09_18_5.8_10_30_3_0_1.jpg", "no session field"),
])
def test_parse_frame_name_rejects_malformed_aerial_names(name, message):
    with pytest.raises(FarreidError, match=message):
        parse_frame_name(name)


def test_detreidx_layout_platforms_relabelling_and_raw_pids(tmp_path):
    ds = build_dataset("detreidx", make_detreidx(tmp_path))
    assert sorted(ds.protocols) == ["A2A", "A2G", "G2A"]
    assert sorted({t.pid for t in ds.train}) == [0, 1] and ds.train_raw_pids == (3, 7)
    aerial = [t for t in ds.train if t.platform == "aerial"]
    assert all(t.camid == 2 and t.session == 2 and t.altitude == 5.8 for t in aerial)
    assert all(t.camid == 0 and t.altitude is None for t in ds.train if t.platform == "ground")
    a2g = ds.protocol("A2G")
    assert {t.platform for t in a2g.query} == {"aerial"} and {t.platform for t in a2g.gallery} == {"ground"}
    assert sorted({t.pid for t in a2g.query}) == [11, 12]  # raw pids kept
    assert a2g.query[0].name == "0011_5a" and len(a2g.query[0].frames) == 3
    assert ds.protocol("A2A").gallery[0].camid == 2


def test_detreidx_single_protocol_and_no_train(tmp_path):
    root = make_detreidx(tmp_path)
    ds = build_dataset("detreidx", root, protocol="G2A", load_train=False)
    assert list(ds.protocols) == ["G2A"] and len(ds.train) == 0
    with pytest.raises(FarreidError, match="unknown DetReIDX protocol 'X2Y'"):
        build_dataset("detreidx", root, protocol="X2Y")


def test_detreidx_flat_anonymised_test_folders_load_with_unknown_pid(tmp_path):
    ds = build_dataset("detreidx", make_detreidx(tmp_path, flat_test=True))
    query = ds.protocol("A2G").query
    assert {t.pid for t in query} == {-1} and query.stats()["unlabelled"] == len(query)
    assert {t.name for t in query} == {"0011_5a", "0012_5a"}


def test_detreidx_non_integer_identity_folders_in_test_are_anonymised(tmp_path):
    root = make_detreidx(tmp_path)
    gallery = root / "case1_aerial_to_ground" / "gallery"
    for folder in list(gallery.iterdir()):
        folder.rename(gallery / f"anon{folder.name}")
    assert {t.pid for t in build_dataset("detreidx", root).protocol("A2G").gallery} == {-1}


def test_frames_are_ordered_by_frame_number(tmp_path):
    root = make_detreidx(tmp_path)
    folder = root / "train" / "0003" / "0003_0002"
    write_tracklet(folder, [AERIAL.format(s=2, f=i) for i in (10, 9, 100)])
    frames = next(t for t in build_dataset("detreidx", root).train if t.name == "0003_0002").frames
    numbers = [int(Path(p).stem.rsplit("_", 1)[1]) for p in frames]
    assert numbers == sorted(numbers) and numbers[-1] == 100


BAD_CASES = {
    "missing split": (lambda r: __import__("shutil").rmtree(r / "case3_aerial_to_aerial" / "gallery"),
                      "missing A2A gallery folder", "case3_aerial_to_aerial/gallery"),
    "empty tracklet": (lambda r: (r / "train" / "0003" / "0003_0009").mkdir(), "empty tracklet", "0003_0009"),
    "non-image": (lambda r: (r / "train" / "0003" / "0003_0001" / "notes.txt").write_text("x"),
                  "non-image file", "notes.txt"),
    "pid not integer": (lambda r: write_tracklet(r / "train" / "bob" / "t1", ground_names()),
                        "is not an integer", "train/bob"),
    "unreadable image": (lambda r: (r / "train" / "0003" / "0003_0001" / GROUND.format(f=0)).write_bytes(b""),
                         "unreadable image", GROUND.format(f=0)),
    "frames in identity folder": (lambda r: (r / "train" / "0003" / "x.jpg").write_bytes(JPEG),
                                  "holds both frames and folders", "train/0003"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_detreidx_bad_trees_fail_with_one_message_naming_the_path(tmp_path, case):
    root = make_detreidx(tmp_path)
    damage, message, path_part = BAD_CASES[case]
    damage(root)
    with pytest.raises(FarreidError, match=message) as info:
        build_dataset("detreidx", root)
    assert path_part in str(info.value)


def test_hidden_files_are_ignored(tmp_path):
    root = make_detreidx(tmp_path)
    (root / "train" / "0003" / "0003_0001" / ".DS_Store").write_bytes(b"junk")
    assert len(build_dataset("detreidx", root).train) == 4


# --- MARS ---------------------------------------------------------------------------------------------------

def make_mars(root: Path) -> Path:
    train_names, test_names = [], []
    for pid, cam, n in ((1, 1, 3), (1, 2, 2), (5, 3, 2)):
        names = [f"{pid:04d}C{cam}T0001F{f:03d}.jpg" for f in range(1, n + 1)]
        write_tracklet(root / "bbox_train" / f"{pid:04d}", names)
        train_names += names
    for pid, cam in ((2, 1), (2, 4), (0, 2), (-1, 3), (9, 6)):
        folder = "00-1" if pid == -1 else f"{pid:04d}"
        names = [f"{folder}C{cam}T0002F{f:03d}.jpg" for f in range(1, 3)]
        write_tracklet(root / "bbox_test" / folder, names)
        test_names += names
    info = root / "info"
    info.mkdir()
    (info / "train_name.txt").write_text("\n".join(train_names) + "\n")
    (info / "test_name.txt").write_text("\n".join(test_names) + "\n")
    (info / "tracks_train_info.csv").write_text("1,3,1,1\n4,5,1,2\n6,7,5,3\n")
    (info / "tracks_test_info.txt").write_text("1 2 2 1\n3 4 2 4\n5 6 0 2\n7 8 -1 3\n9 10 9 6\n")
    (info / "query_IDX.csv").write_text("1\n5\n")
    return root


def test_mars_from_text_conversions_with_junk_and_distractors(tmp_path):
    ds = build_dataset("mars", make_mars(tmp_path))
    assert len(ds.train) == 3 and ds.train_raw_pids == (1, 5) and ds.train[0].camid == 0
    proto = ds.protocol("test")
    assert [t.pid for t in proto.query] == [2, 9]
    assert sorted(t.pid for t in proto.gallery) == [0, 2]  # query tracks and junk (-1) left out
    assert proto.query[0].name == "0002C1T0002" and proto.query[1].camid == 5


def test_mars_mat_tables_need_scipy_or_a_conversion(tmp_path):
    root = make_mars(tmp_path)
    (root / "info" / "query_IDX.csv").unlink()
    (root / "info" / "query_IDX.mat").write_bytes(b"MATLAB 5.0")
    try:
        import scipy  # noqa: F401
    except ImportError:
        with pytest.raises(FarreidError, match="needs scipy .* query_IDX.csv"):
            build_dataset("mars", root)
    else:
        pytest.skip("scipy is installed; the .mat path is scipy's")


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "info" / "tracks_test_info.txt").write_text("1 2 2 1\n3 99 2 4\n"), "row 2 of tracks_test_info"),
    (lambda r: (r / "info" / "query_IDX.csv").write_text("7\n"), "query_IDX"),
    (lambda r: __import__("shutil").rmtree(r / "bbox_test"), "missing MARS bbox_test folder"),
    (lambda r: (r / "bbox_test" / "0002" / "0002C1T0002F001.jpg").write_bytes(b"GIF89a"), "unreadable image"),
])
def test_mars_bad_inputs(tmp_path, damage, message):
    root = make_mars(tmp_path)
    damage(root)
    with pytest.raises(FarreidError, match=message):
        build_dataset("mars", root)


# --- iLIDS-VID and PRID2011 ---------------------------------------------------------------------------------

def make_two_camera(root: Path, dataset: str, people: int = 4) -> Path:
    if dataset == "ilidsvid":
        cams = [root / "i-LIDS-VID" / "sequences" / c for c in ("cam1", "cam2")]
        name = "person{:03d}"
    else:
        cams = [root / "prid_2011" / "multi_shot" / c for c in ("cam_a", "cam_b")]
        name = "person_{:04d}"
    for i in range(1, people + 1):
        for cam in cams:
            write_tracklet(cam / name.format(i), [f"{f:04d}.png" for f in range(1, 4)], PNG)
    return root


@pytest.mark.parametrize("dataset", ["ilidsvid", "prid2011"])
def test_two_camera_datasets_with_generated_split(tmp_path, dataset):
    ds = build_dataset(dataset, make_two_camera(tmp_path, dataset), seed=3)
    proto = ds.protocol("test")
    assert len(ds.train) == 4 and ds.train.num_camids == 2 and len(proto.query) == len(proto.gallery) == 2
    assert {t.camid for t in proto.query} == {0} and {t.camid for t in proto.gallery} == {1}
    assert set(ds.train_raw_pids).isdisjoint(t.pid for t in proto.query)
    again = build_dataset(dataset, tmp_path, seed=3)
    assert [t.name for t in again.protocol("test").query] == [t.name for t in proto.query]


def test_ilidsvid_split_file_and_torchreid_parent_folder(tmp_path):
    base = make_two_camera(tmp_path / "ilids-vid", "ilidsvid")
    splits = [{"train": ["person001", "person002", "person003"], "test": ["person004"]}]
    (base / "splits.json").write_text(json.dumps(splits))
    ds = build_dataset("ilidsvid", tmp_path)
    assert ds.root == str(base) and [t.pid for t in ds.protocol("test").query] == [4] and len(ds.train) == 6
    with pytest.raises(FarreidError, match="split_id 1 out of range"):
        build_dataset("ilidsvid", tmp_path, split_id=1)


def test_prid_keeps_only_the_first_200_people_seen_by_both_cameras(tmp_path):
    root = make_two_camera(tmp_path, "prid2011", people=2)
    write_tracklet(root / "prid_2011" / "multi_shot" / "cam_b" / "person_0500", ["0001.png"], PNG)
    ds = build_dataset("prid2011", root)
    assert len(ds.train) + len(ds.protocol("test").query) * 2 == 4


def test_two_camera_missing_person_in_split_file(tmp_path):
    make_two_camera(tmp_path, "ilidsvid")
    (tmp_path / "splits.json").write_text(json.dumps([{"train": ["person001"], "test": ["person099"]}]))
    with pytest.raises(FarreidError, match="person099"):
        build_dataset("ilidsvid", tmp_path)


# --- folder layout -------------------------------------------------------------------------------------------

def make_folder(root: Path, with_test: bool = True) -> Path:
    splits = ("train", "query", "gallery") if with_test else ("train",)
    for split in splits:
        for pid in (1, 2):
            for cam, platform in ((1, "ground"), (2, "aerial")):
                write_tracklet(root / split / str(pid) / f"t_c{cam}_{platform}", [f"{f}.jpg" for f in range(2)])
    return root


def test_folder_layout_with_pattern(tmp_path):
    ds = build_dataset("folder", make_folder(tmp_path), pattern=r"_c(?P<camid>\d+)_(?P<platform>ground|aerial)")
    assert len(ds.train) == 4 and {(t.camid, t.platform) for t in ds.train} == {(1, "ground"), (2, "aerial")}
    assert ds.protocol("test").query[0].name == "1/t_c1_ground"


def test_folder_layout_with_sidecar_and_defaults(tmp_path):
    root = make_folder(tmp_path, with_test=False)
    rows = ["path,camid,platform,altitude"] + [
        f"train/{pid}/t_c{c}_{p},{c},{p},{'' if p == 'ground' else 30}"
        for pid in (1, 2) for c, p in ((1, "ground"), (2, "aerial"))]
    (root / "tracklets.csv").write_text("\n".join(rows) + "\n")
    ds = build_dataset("folder", root)
    aerial = [t for t in ds.train if t.platform == "aerial"]
    assert ds.protocols == {} and len(aerial) == 2 and aerial[0].altitude == 30.0
    (root / "tracklets.csv").unlink()
    assert {t.camid for t in build_dataset("folder", root).train} == {0}


@pytest.mark.parametrize("kwargs, damage, message", [
    ({}, lambda r: __import__("shutil").rmtree(r / "gallery"), "missing split folder"),
    ({"pattern": r"_x(?P<camid>\d+)"}, lambda r: None, "does not match pattern"),
    ({"pattern": r"(\d+)"}, lambda r: None, "none of the named groups"),
    ({}, lambda r: (r / "tracklets.csv").write_text("path,camid\ntrain/1/t_c1_ground,1\n"), "no row in sidecar"),
    ({}, lambda r: write_tracklet(r / "train" / "x1" / "t", ["0.jpg"]), "is not an integer"),
])
def test_folder_bad_inputs(tmp_path, kwargs, damage, message):
    root = make_folder(tmp_path)
    damage(root)
    with pytest.raises(FarreidError, match=message):
        build_dataset("folder", root, **kwargs)


# --- registry ------------------------------------------------------------------------------------------------

def test_registry_user_dataset_unknown_names_and_options(tmp_path):
    @register_dataset("tiny_user_set", replace=True)
    def build(root, flavour="plain"):
        return ReIDDataset("tiny_user_set", str(root), TrackletSet("train"), {})

    assert build_dataset("tiny_user_set", tmp_path, flavour="x").name == "tiny_user_set"
    with pytest.raises(FarreidError, match="takes no option 'colour'"):
        build_dataset("tiny_user_set", tmp_path, colour=1)
    with pytest.raises(FarreidError, match="unknown dataset 'nope'.*detreidx"):
        build_dataset("nope", tmp_path)
    with pytest.raises(FarreidError, match="already registered"):
        register_dataset("detreidx")(build)


def test_build_from_config_passes_protocol_only_where_accepted(tmp_path):
    from farreid.config import load_config

    cfg = load_config(None, [f"data.root={make_detreidx(tmp_path / 'd')}", "data.protocol=A2A"])
    assert list(build_dataset_from_config(cfg.data).protocols) == ["A2A"]
    cfg = load_config(None, ["data.dataset=folder", f"data.root={make_folder(tmp_path / 'f')}",
                             "data.protocol=A2A", "data.options.pattern=_c(?P<camid>\\d+)"])
    assert {t.camid for t in build_dataset_from_config(cfg.data).train} == {1, 2}


def test_indexing_reads_no_pixels(tmp_path, monkeypatch):
    root = make_detreidx(tmp_path)
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("an image was decoded at index time"))
    ds = build_dataset("detreidx", root)
    assert len(ds.train) == 4 and len(ds.protocol("A2G").query) == 2
