"""A small generated example of "your own footage": one camera's video and its MOTChallenge-style gt.txt.

Three people in differently coloured clothes walk across a textured street at different speeds and heights
(160x120 pixels, 24 frames at 8 fps). `gt.txt` has MOTChallenge ground-truth columns
`frame,id,x,y,w,h,consider,class,visibility`: the three pedestrians (class 1), a parked car (class 3) and, for
the last frames of person 3, a mostly hidden box (visibility 0.1) that the default filters leave out.
The docs' own-footage walk (docs/footage.md) was run on this example; tests/test_own_footage.py repeats it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FRAMES, FPS = 160, 120, 24, 8
# (track id, top colour, bottom colour, x at frame 1, x step a frame, y, width, height)
PEOPLE = [
    (1, (200, 40, 40), (40, 40, 90), 4, 4, 34, 18, 48),
    (2, (40, 160, 60), (200, 200, 200), 130, -3, 50, 16, 44),
    (3, (230, 200, 40), (90, 50, 20), 20, 2, 62, 20, 52),
]
CAR = (96, 8, 48, 24)  # x, y, w, h of a parked car


def _street(rng: np.random.Generator) -> np.ndarray:
    img = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
    img[:30] = (150, 170, 190)  # facades
    img += rng.integers(0, 25, img.shape, dtype=np.uint8)
    return img


def frame_image(number: int, rng_seed: int = 0) -> np.ndarray:
    """Frame `number` (1-based) as an (H, W, 3) uint8 RGB array."""
    img = _street(np.random.default_rng(rng_seed))
    x, y, w, h = CAR
    img[y : y + h, x : x + w] = (60, 60, 70)
    for _, top, bottom, x0, step, y0, w, h in PEOPLE:
        x = x0 + step * (number - 1)
        left, right = max(x, 0), min(x + w, WIDTH)
        if right <= left:
            continue
        sway = (number % 2) * 2
        img[y0 : y0 + h // 5, left:right] = (220, 180, 150)  # head
        img[y0 + h // 5 : y0 + h // 2 + sway, left:right] = top
        img[y0 + h // 2 + sway : y0 + h, left:right] = bottom
    return img


def gt_rows() -> list[str]:
    rows = []
    for f in range(1, FRAMES + 1):
        for pid, _, _, x0, step, y0, w, h in PEOPLE:
            visibility = 0.1 if pid == 3 and f > 20 else 1.0
            rows.append(f"{f},{pid},{x0 + step * (f - 1)},{y0},{w},{h},1,1,{visibility}")
        rows.append(f"{f},9,{CAR[0]},{CAR[1]},{CAR[2]},{CAR[3]},0,3,1.0")
    return rows


def write_footage(folder: str | Path, name: str = "cam1") -> tuple[Path, Path]:
    """Write `<name>.mp4` and `<name>_gt.txt` into `folder`; returns their paths."""
    import av

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    video, gt = folder / f"{name}.mp4", folder / f"{name}_gt.txt"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = 2_000_000
        for f in range(1, FRAMES + 1):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame_image(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    gt.write_text("\n".join(gt_rows()) + "\n")
    return video, gt
