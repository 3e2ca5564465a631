import csv

import numpy as np
import pytest
from PIL import Image

from farreid.data import build_dataset
from farreid.errors import FarreidError
from farreid.inference.mot import MotBox, clamp_box, read_mot_tracks, split_track, tracklets_from_mot

W, H = 160, 120


def _frame(number: int) -> np.ndarray:
    """Two coloured people walking right; person 2 leaves the image."""
    img = np.zeros((H, W, 3), np.uint8) + 30
    img[20:80, 10 + number : 30 + number] = (220, 40, 40)
    img[30:90, 120 + 5 * number : 140 + 5 * number] = (40, 40, 220)
    return img


def _tracks_file(tmp_path, n_frames=10):
    lines = []
    for f in range(1, n_frames + 1):
        lines.append(f"{f},1,{10 + f},20,20,60,1,-1,-1,-1")
        lines.append(f"{f},2,{120 + 5 * f},30,20,60,0.9,-1,-1,-1")  # clamped at the right edge, later degenerate
    lines.append("3,7,5,5,1,1,1")  # a degenerate one-pixel box
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_and_split(tmp_path):
    tracks = read_mot_tracks(_tracks_file(tmp_path))
    assert sorted(tracks) == [1, 2, 7] and len(tracks[1]) == 10
    boxes = [MotBox(f, 1, 0, 0, 5, 5) for f in (1, 2, 3, 4, 5, 8, 9)]
    pieces, dropped = split_track(boxes, max_len=3, min_len=2)
    assert [[b.frame for b in p] for p in pieces] == [[1, 2, 3], [4, 5], [8, 9]] and dropped == 0
    pieces, dropped = split_track(boxes, max_len=4, min_len=3)
    assert [[b.frame for b in p] for p in pieces] == [[1, 2, 3, 4]] and dropped == 2
    assert clamp_box(MotBox(1, 1, -5, -5, 20, 300), 100, 100) == (0, 0, 15, 100)


def test_from_frame_folder(tmp_path):
    frames = tmp_path / "img1"
    frames.mkdir()
    for f in range(1, 11):
        Image.fromarray(_frame(f)).save(frames / f"{f:06d}.jpg", quality=95)
    out = tmp_path / "tracklets"
    summary = tracklets_from_mot(_tracks_file(tmp_path), out, frames_dir=frames, max_len=4, min_len=2, min_size=8, camid=3)
    rows = list(csv.DictReader((out / "tracklets.csv").open()))
    names = {r["path"] for r in rows}
    assert "gallery/0001/0001_c3_f000001" in names and "gallery/0001/0001_c3_f000009" in names  # 10 -> 4 + 4 + 2
    assert summary.skipped_boxes > 0  # person 2 leaves the image; track 7 is one pixel
    assert all(r["camid"] == "3" and r["platform"] == "ground" for r in rows)
    crop = np.asarray(Image.open(out / "gallery" / "0001" / "0001_c3_f000001" / "000001.jpg"))
    assert crop.shape == (60, 20, 3) and crop[..., 0].mean() > 150  # the red person
    assert not (out / "gallery" / "0007").exists()

    # a second camera into the same folder keeps the first camera's rows, and the folder dataset reads both
    tracklets_from_mot(_tracks_file(tmp_path), out, frames_dir=frames, max_len=4, min_len=2, camid=5, split="query")
    dataset = build_dataset("folder", out, load_train=False)
    protocol = dataset.protocols["test"]
    assert {t.camid for t in protocol.gallery} == {3} and {t.camid for t in protocol.query} == {5}
    assert len(protocol.gallery) == summary.tracklets


def test_from_video(tmp_path):
    av = pytest.importorskip("av")
    video = tmp_path / "clip.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for f in range(1, 11):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_frame(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out = tmp_path / "tracklets"
    summary = tracklets_from_mot(_tracks_file(tmp_path), out, video=video, max_len=0, min_len=2)
    assert summary.tracklets >= 1 and (out / "gallery" / "0001" / "0001_c0_f000001").is_dir()
    assert len(list((out / "gallery" / "0001" / "0001_c0_f000001").glob("*.jpg"))) == 10


def test_bad_inputs(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,10,10,5,5\nx,y\n")
    with pytest.raises(FarreidError, match=r"bad.txt:2: expected 'frame,id,x,y,w,h"):
        read_mot_tracks(bad)
    with pytest.raises(FarreidError, match="tracks file not found"):
        read_mot_tracks(tmp_path / "missing.txt")
    with pytest.raises(FarreidError, match="exactly one frame source"):
        tracklets_from_mot(_tracks_file(tmp_path), tmp_path / "o")
    frames = tmp_path / "few"
    frames.mkdir()
    Image.fromarray(_frame(1)).save(frames / "000001.jpg")
    with pytest.raises(FarreidError, match="holds only 1 images"):
        tracklets_from_mot(_tracks_file(tmp_path), tmp_path / "o", frames_dir=frames)


@pytest.mark.parametrize("line, problem", [
    ("nan,1,10,10,5,5", "frame is nan"),
    ("1,1,10,inf,5,5", "box value is inf"),
    ("1,1,10,10,NaN,5", "box value is NaN"),
    ("1.5,1,10,10,5,5", "frame must be a whole number"),
    ("1,inf,10,10,5,5", "id is inf"),
    ("1,1,10,10,5,5,nan", "column value is nan"),
])
def test_non_finite_values_name_the_line(tmp_path, line, problem):
    bad = tmp_path / "t.txt"
    bad.write_text(f"1,1,10,10,5,5\n{line}\n")
    with pytest.raises(FarreidError, match=rf"t.txt:2: expected .*\({problem}[^)]*\)"):
        read_mot_tracks(bad)


def test_non_utf8_bytes_name_the_line(tmp_path):
    bad = tmp_path / "t.txt"
    bad.write_bytes(b"1,1,10,10,5,5\n2,1,10,10,5,5 \xff\n")
    with pytest.raises(FarreidError, match=r"t.txt:2: not UTF-8 text \(byte 0xff at column 15\)"):
        read_mot_tracks(bad)
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf1,1,10,10,5,5\n")  # a byte-order mark (Windows editors) is fine
    assert list(read_mot_tracks(bom)) == [1]


def test_detections_are_not_tracks(tmp_path):
    det = tmp_path / "det.txt"
    det.write_text("1,-1,10,10,20,40,0.9\n2,-1,12,10,20,40,0.8\n")
    with pytest.raises(FarreidError, match=r"has no track ids \(every id is -1\): it holds detections.*tracker's "
                                           r"output in MOT format, or the ground truth gt/gt.txt"):
        read_mot_tracks(det)
    with pytest.raises(FarreidError, match=r"none of its 2 boxes passes the filters \(0 without track id, 2 below "
                                           r"--min-conf 0.95"):
        det.write_text("1,1,10,10,20,40,0.9\n2,1,12,10,20,40,0.8\n")
        read_mot_tracks(det, min_conf=0.95)


def test_mot_gt_classes_and_visibility(tmp_path):
    """MOTChallenge gt.txt: frame,id,x,y,w,h,consider,class,visibility. Pedestrians (1) that are visible enough
    are kept by default; vehicles, occluders, static people and mostly hidden boxes are not."""
    rows = []
    for f in range(1, 4):
        rows += [f"{f},1,10,10,20,40,1,1,0.9", f"{f},2,50,10,30,20,0,3,1.0",  # pedestrian; car
                 f"{f},3,90,10,20,40,0,7,0.8", f"{f},4,120,10,20,40,0,12,1.0",  # static person; occluder
                 f"{f},5,10,60,20,40,1,1,0.1"]  # a pedestrian 90 % hidden
    rows.append("1,6,10,60,20,40,1,-1,-1")  # tracker output style: class and visibility unknown
    gt = tmp_path / "gt.txt"
    gt.write_text("\n".join(rows) + "\n")
    assert sorted(read_mot_tracks(gt)) == [1, 6]
    assert sorted(read_mot_tracks(gt, classes=(1, 7))) == [1, 3, 6]
    assert sorted(read_mot_tracks(gt, classes=None, min_visibility=0)) == [1, 2, 3, 4, 5, 6]
    assert sorted(read_mot_tracks(gt, min_visibility=0.05)) == [1, 5, 6]


def test_two_sequences_never_merge_ids_silently(tmp_path):
    frames = tmp_path / "img1"
    frames.mkdir()
    for f in range(1, 11):
        Image.fromarray(_frame(f)).save(frames / f"{f:06d}.jpg", quality=95)
    first = _tracks_file(tmp_path)
    other = tmp_path / "seq2"
    other.mkdir()
    second = _tracks_file(other)  # another sequence whose track ids 1 and 2 are other people
    out = tmp_path / "tracklets"
    options = dict(frames_dir=frames, max_len=4, min_len=2)
    tracklets_from_mot(first, out, camid=1, **options)
    tracklets_from_mot(first, out, camid=1, split="query", **options)  # the same sequence again: its own ids
    with pytest.raises(FarreidError, match=r"already holds identities 1, 2 cut from .*gt.txt; the ids of .*seq2/gt.txt "
                                           r"would merge.*--shared-ids.*--id-offset 1000 \(this file's id 1 becomes 1001\)"):
        tracklets_from_mot(second, out, camid=2, **options)
    assert not any("seq2" in line for line in (out / "tracklets.csv").read_text().splitlines())  # nothing written
    tracklets_from_mot(second, out, camid=2, id_offset=1000, **options)
    dataset = build_dataset("folder", out, load_train=False)
    gallery = dataset.protocols["test"].gallery
    assert {t.pid for t in gallery if t.camid == 2} == {1001, 1002} and {t.pid for t in gallery if t.camid == 1} == {1, 2}
    assert (out / "gallery" / "1001" / "1001_c2_f000001").is_dir()
    tracklets_from_mot(second, tmp_path / "shared", camid=2, **options)
    tracklets_from_mot(first, tmp_path / "shared", camid=1, shared_ids=True, **options)  # one numbering: allowed


def test_from_mot_shows_progress_with_counts_and_rates(tmp_path, monkeypatch, capsys):
    frames = tmp_path / "img1"
    frames.mkdir()
    for f in range(1, 11):
        Image.fromarray(_frame(f)).save(frames / f"{f:06d}.jpg")
    monkeypatch.setenv("FARREID_PROGRESS", "1")
    tracklets_from_mot(_tracks_file(tmp_path), tmp_path / "out", frames_dir=frames, max_len=4, min_len=2)
    err = capsys.readouterr().err
    assert "cut tracklets" in err and "/10 " in err and "frame/s" in err  # a count of the 10 frames, a rate
