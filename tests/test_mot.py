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
