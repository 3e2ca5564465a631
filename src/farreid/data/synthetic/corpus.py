"""Captioned renders of synthetic people: the image-text corpus of vision-language pretraining (`farreid pretrain`).

Every image is one render of a person — seen from a ground camera or a drone at one of the DetReIDX capture
points (5.8-120 m), in either session's light — paired with a caption written from the attributes the renderer
drew (`captions.caption`). Identities come from their own seed stream (`PRETRAIN_STREAM`), so no pretraining
person is a person of the demo's synthetic data set; the held-out split (`split="heldout"`) is a third set of
people, for zero-shot evaluation. Frames go through JPEG and the same decoder the ReID data uses, so the
towers see what training and test frames look like.

    corpus = render_corpus(num_ids=2000, images_per_id=16, seed=0, size=(96, 48))
    corpus.images  # (N, 3, 96, 48) uint8;  corpus.captions[i], corpus.attributes[i]
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch

from farreid.data.decode import decode_frame
from farreid.data.synthetic.appearance import Appearance, sample_appearance
from farreid.data.synthetic.captions import CaptionView, caption
from farreid.data.synthetic.generate import CAPTURE_POINTS, GROUND_SIZE, SESSIONS, TERRAIN, WALLS, FLOORS, person_height_px
from farreid.data.synthetic.render import VIEWS, camera_look, render_aerial, render_ground
from farreid.errors import FarreidError
from farreid.utils.log import progress

PRETRAIN_STREAM = 101  # seed stream of the pretraining people (the demo's people use the bare seed)
SPLIT_STREAMS = {"train": 0, "heldout": 1}
GROUND_SHARE = 0.4  # of the images; the rest are aerial


@dataclass
class CaptionedImages:
    """Images (N, 3, H, W) uint8 with one caption and one attribute record each."""

    images: torch.Tensor
    captions: list[str]
    attributes: list[dict]

    def __len__(self) -> int:
        return len(self.captions)


def person_appearance(seed: int, split: str, person: int) -> Appearance:
    """Who pretraining person `person` of `split` is (its own seed stream, apart from the ReID data's people)."""
    return sample_appearance(np.random.default_rng([seed, PRETRAIN_STREAM, SPLIT_STREAMS[split], person, 0]))


def _render_one(app: Appearance, rng: np.random.Generator) -> tuple[object, CaptionView, int]:
    """One render of `app` from a random platform, view and capture point; (PIL image, view, JPEG quality)."""
    phase = float(rng.uniform(0, 2 * math.pi))
    view = VIEWS[int(rng.integers(len(VIEWS)))]
    if rng.random() < GROUND_SHARE:
        wall, floor = WALLS[int(rng.integers(len(WALLS)))], FLOORS[int(rng.integers(len(FLOORS)))]
        image = render_ground(app, GROUND_SIZE, phase, view, wall, floor, rng)
        return camera_look(image, (1.0, 1.0, 1.0), 0.0, 2.0, rng), CaptionView("ground", view), 92
    alt, dist, pitch = CAPTURE_POINTS[int(rng.integers(len(CAPTURE_POINTS)))]
    gain, haze, _ = SESSIONS[int(rng.integers(1, 3))]
    px = person_height_px(alt, dist) * float(rng.uniform(0.9, 1.1))
    terrain = TERRAIN[int(rng.integers(len(TERRAIN)))]
    image = render_aerial(app, px, pitch, phase, view, terrain, rng)
    blur = float(rng.uniform(0.2, 0.4)) + 0.3 * min(1.0, math.hypot(alt, dist) / 120.0)
    image = camera_look(image, gain, blur, float(rng.uniform(3.0, 7.0)), rng, haze)
    return image, CaptionView("aerial", "top" if pitch >= 80 else view, altitude=alt), int(rng.integers(55, 81))


def _decoded(image, quality: int, size: tuple[int, int], interpolation: str) -> np.ndarray:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return decode_frame(buf, size, interpolation)  # type: ignore[arg-type]  (PIL opens file objects too)


def render_corpus(
    num_ids: int,
    images_per_id: int,
    seed: int = 0,
    size: tuple[int, int] = (96, 48),
    split: str = "train",
    interpolation: str = "bicubic",
    show_progress: bool = True,
) -> CaptionedImages:
    """Render `num_ids` people x `images_per_id` captioned images at `size` (H, W); deterministic in the arguments."""
    if split not in SPLIT_STREAMS:
        raise FarreidError(f"corpus split must be one of {', '.join(SPLIT_STREAMS)}; got {split!r}")
    if num_ids < 1 or images_per_id < 1:
        raise FarreidError(f"a corpus needs num_ids >= 1 and images_per_id >= 1; got {num_ids} and {images_per_id}")
    stream = [seed, PRETRAIN_STREAM, SPLIT_STREAMS[split]]
    images = np.empty((num_ids * images_per_id, size[0], size[1], 3), np.uint8)
    captions, attributes = [], []
    people = range(num_ids)
    for person in progress(people, desc=f"render {split} corpus") if show_progress else people:
        app = person_appearance(seed, split, person)
        rng = np.random.default_rng([*stream, person, 1])
        for k in range(images_per_id):
            image, view, quality = _render_one(app, rng)
            images[person * images_per_id + k] = _decoded(image, quality, size, interpolation)
            captions.append(caption(app, view, rng))
            attributes.append({
                "person": person, "platform": view.platform, "view": view.view, "altitude": view.altitude,
                "top": app.top_name, "bottom": app.bottom_name,
                "bag": "backpack" if app.backpack is not None else "none",
            })
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return CaptionedImages(tensor, captions, attributes)
