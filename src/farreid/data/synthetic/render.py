"""Drawing synthetic people with PIL: a walking figure seen from the ground (front, back, side), from a drone at a
pitch (vertically foreshortened, head and shoulders prominent), or from straight above (a top-down blob).

Everything is drawn with ImageDraw primitives at a supersampled size and reduced, then the camera's look is
applied (session lighting, blur, sensor noise); JPEG compression happens when the frame is written.

A frame can also carry one of the failures of real far-distance tracklets (`FrameFault`): the detector box
sliding off the person (`shift`), a passer-by walking in front (`occluder`), or motion blur (`motion_blur`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from farreid.data.synthetic.appearance import Appearance, Color

VIEWS = ("front", "back", "side")


def _polygon_limb(draw: ImageDraw.ImageDraw, start: tuple[float, float], end: tuple[float, float], width: float,
                  fill: Color) -> None:
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    norm = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / norm * width / 2, dx / norm * width / 2
    draw.polygon([(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)], fill=fill)


def _torso_pattern(draw: ImageDraw.ImageDraw, app: Appearance, box: tuple[float, float, float, float], view: str,
                   unit: float) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=app.top)
    step = max(unit * 0.045, 1.0)
    if app.pattern == "hstripes":
        y = y0 + step
        while y < y1:
            draw.rectangle((x0, y, x1, y + step / 2), fill=app.accent)
            y += step * 1.5
    elif app.pattern == "vstripes":
        x = x0 + step / 2
        while x < x1:
            draw.rectangle((x, y0, x + step / 2, y1), fill=app.accent)
            x += step * 1.3
    elif app.pattern == "two_tone":
        draw.rectangle((x0, (y0 + y1) / 2, x1, y1), fill=app.accent)
    elif app.pattern == "checks":
        size = step * 1.4
        for i, y in enumerate(np.arange(y0, y1, size)):
            for j, x in enumerate(np.arange(x0, x1, size)):
                if (i + j) % 2:
                    draw.rectangle((x, y, min(x + size, x1), min(y + size, y1)), fill=app.accent)
    elif app.pattern == "logo" and view == "front":
        cx, cy, r = (x0 + x1) / 2, y0 + (y1 - y0) * 0.38, (x1 - x0) * 0.22
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=app.accent)


def draw_upright(draw: ImageDraw.ImageDraw, app: Appearance, cx: float, top: float, height: float, phase: float,
                 view: str, squash: float = 1.0) -> None:
    """A walking person, `height` pixels tall before vertical foreshortening by `squash` (1 = side-on camera)."""
    H = height

    def y(frac: float) -> float:
        return top + frac * H * squash

    side = view == "side"
    swing = math.sin(phase)
    torso_w = (0.16 if side else 0.27) * H * app.build
    shoulder_y, hip_y = y(0.15), y(1.0 - app.leg_fraction - 0.03)
    foot_y = y(0.97)
    head_r = 0.062 * H * app.head_scale
    head_cy = top + head_r * 1.05
    leg_w, arm_w = 0.085 * H * app.build ** 0.5, 0.055 * H
    # Legs: side view swings them front/back; front and back views lift them alternately.
    hips = [cx - torso_w * 0.22, cx + torso_w * 0.22] if not side else [cx, cx]
    for k, sign in enumerate((1, -1)):
        fx = hips[k] + (sign * 0.13 * H * swing if side else sign * 0.01 * H * swing)
        fy = foot_y - (max(0.0, sign * swing) * 0.03 * H * squash if not side else 0.0)
        knee = ((hips[k] + fx) / 2, (hip_y + fy) / 2)
        upper, lower = app.bottom, app.bottom
        if app.bottom_type == "shorts":
            lower = app.skin
        _polygon_limb(draw, (hips[k], hip_y), knee, leg_w, upper)
        _polygon_limb(draw, knee, (fx, fy), leg_w * 0.9, lower if app.bottom_type != "skirt" else app.skin)
        draw.ellipse((fx - leg_w * 0.7, fy - leg_w * 0.35, fx + leg_w * (1.1 if side else 0.7), fy + leg_w * 0.35),
                     fill=app.shoes)
    if app.bottom_type == "skirt":
        draw.polygon([(cx - torso_w / 2, hip_y), (cx + torso_w / 2, hip_y), (cx + torso_w * 0.75, y(0.75)),
                      (cx - torso_w * 0.75, y(0.75))], fill=app.bottom)
    # Backpack seen from behind or the side is drawn under the arms; from the front only its straps show.
    if app.backpack is not None and view == "side":
        draw.rectangle((cx - torso_w * 1.2, shoulder_y + 0.01 * H, cx - torso_w * 0.4, y(0.4)), fill=app.backpack)
    _torso_pattern(draw, app, (cx - torso_w / 2, shoulder_y, cx + torso_w / 2, hip_y), view, H)
    if app.backpack is not None and view == "back":
        draw.rectangle((cx - torso_w * 0.36, shoulder_y + 0.02 * H, cx + torso_w * 0.36, y(0.4)), fill=app.backpack)
    if app.backpack is not None and view == "front":
        for sx in (-0.3, 0.3):
            draw.line((cx + sx * torso_w, shoulder_y, cx + sx * torso_w, y(0.33)), fill=app.backpack,
                      width=max(1, round(0.018 * H)))
    # Arms swing opposite to the legs.
    arm_x = [cx] if side else [cx - torso_w / 2 - arm_w * 0.3, cx + torso_w / 2 + arm_w * 0.3]
    for k, ax in enumerate(arm_x):
        sign = -1 if k == 0 else 1
        hand = (ax - 0.1 * H * swing if side else ax + sign * 0.015 * H * abs(swing), y(0.5))
        elbow = ((ax + hand[0]) / 2, (shoulder_y + hand[1]) / 2)
        _polygon_limb(draw, (ax, shoulder_y + arm_w * 0.3), elbow, arm_w, app.top)
        _polygon_limb(draw, elbow, hand, arm_w * 0.9, app.top if app.long_sleeves else app.skin)
    if app.handbag is not None:
        bx = cx + torso_w * (0.6 if not side else 0.2)
        draw.rectangle((bx, y(0.46), bx + 0.09 * H, y(0.56)), fill=app.handbag)
    # Head (never foreshortened: from above its top stays round), hair, hat.
    if app.hair_style == "long" and view != "front":
        draw.rectangle((cx - head_r, head_cy, cx + head_r, shoulder_y + 0.06 * H * squash), fill=app.hair)
    draw.ellipse((cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r), fill=app.skin)
    if app.hair_style != "bald":
        if view == "back":
            draw.ellipse((cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r), fill=app.hair)
        else:
            draw.pieslice((cx - head_r, head_cy - head_r, cx + head_r, head_cy + head_r), 180, 360, fill=app.hair)
            if app.hair_style == "long":
                draw.rectangle((cx - head_r, head_cy, cx - head_r * 0.6, head_cy + head_r * 1.6), fill=app.hair)
                draw.rectangle((cx + head_r * 0.6, head_cy, cx + head_r, head_cy + head_r * 1.6), fill=app.hair)
    if app.hat is not None:
        draw.pieslice((cx - head_r * 1.1, head_cy - head_r * 1.25, cx + head_r * 1.1, head_cy + head_r * 0.5),
                      180, 360, fill=app.hat)


def draw_top_down(draw: ImageDraw.ImageDraw, app: Appearance, cx: float, cy: float, height: float,
                  phase: float) -> None:
    """A person seen from straight above, walking up the frame: feet, shoulders, bag, head."""
    H = height
    shoulder_w, depth = 0.30 * H * app.build, 0.13 * H
    swing = math.sin(phase) * 0.12 * H
    for sx, dy in ((-0.25, swing), (0.25, -swing)):
        fx, fy = cx + sx * shoulder_w, cy + dy
        draw.ellipse((fx - 0.045 * H, fy - 0.07 * H, fx + 0.045 * H, fy + 0.07 * H), fill=app.shoes)
        draw.ellipse((fx - 0.05 * H, fy - 0.03 * H, fx + 0.05 * H, fy + 0.04 * H), fill=app.bottom)
    if app.backpack is not None:
        draw.rectangle((cx - shoulder_w * 0.3, cy, cx + shoulder_w * 0.3, cy + depth * 1.1), fill=app.backpack)
    draw.ellipse((cx - shoulder_w / 2, cy - depth / 2, cx + shoulder_w / 2, cy + depth / 2), fill=app.top)
    if app.pattern in ("hstripes", "checks", "two_tone"):
        draw.rectangle((cx - shoulder_w * 0.35, cy - depth * 0.1, cx + shoulder_w * 0.35, cy + depth * 0.1),
                       fill=app.accent)
    if app.handbag is not None:
        draw.rectangle((cx + shoulder_w * 0.5, cy - 0.03 * H, cx + shoulder_w * 0.5 + 0.07 * H, cy + 0.05 * H),
                       fill=app.handbag)
    r = 0.065 * H * app.head_scale
    head = app.hat or (app.skin if app.hair_style == "bald" else app.hair)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=head)


def textured_background(size: tuple[int, int], base: Color, rng: np.random.Generator, grain: float = 10.0,
                        floor: Color | None = None, floor_from: float = 0.8) -> Image.Image:
    """(W, H) RGB: a base colour with low-frequency shading and fine grain; optionally a floor band at the bottom."""
    w, h = size
    coarse = rng.normal(0.0, 1.0, (max(2, h // 8), max(2, w // 8), 1))
    shade = np.asarray(Image.fromarray(((coarse[..., 0] * 20) + 128).clip(0, 255).astype(np.uint8)).resize(
        (w, h), Image.Resampling.BILINEAR), dtype=np.float32)[..., None] - 128.0
    img = np.broadcast_to(np.asarray(base, np.float32), (h, w, 3)).copy()
    if floor is not None:
        img[int(h * floor_from):] = floor
    img += shade * 0.6 + rng.normal(0.0, grain, (h, w, 1))
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def camera_look(image: Image.Image, gain: tuple[float, float, float], blur: float, noise: float,
                rng: np.random.Generator, haze: float = 0.0) -> Image.Image:
    """Lighting (per-channel gain and haze towards gray), Gaussian blur and sensor noise."""
    if blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    arr = np.asarray(image, dtype=np.float32) * np.asarray(gain, np.float32)
    if haze > 0:
        arr = arr * (1 - haze) + 150.0 * haze
    if noise > 0:
        arr += rng.normal(0.0, noise, arr.shape)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def motion_blur(image: Image.Image, length: float, angle: float) -> Image.Image:
    """Blur along a line of `length` pixels at `angle` degrees (camera shake or a fast pan)."""
    arr = np.asarray(image, dtype=np.float32)
    steps = max(2, int(round(length)))
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    pad = steps + 1
    padded = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = arr.shape[:2]
    acc = np.zeros_like(arr)
    for k in range(steps):
        t = k - (steps - 1) / 2
        ox, oy = int(round(t * dx)), int(round(t * dy))
        acc += padded[pad + oy : pad + oy + h, pad + ox : pad + ox + w]
    return Image.fromarray((acc / steps).clip(0, 255).astype(np.uint8))


def _draw_occluder(draw: ImageDraw.ImageDraw, fault: "FrameFault", cx: float, top: float, height: float,
                   phase: float, squash: float = 1.0) -> None:
    """A passer-by closer to the camera, partly across the person: drawn last, so in front."""
    x = cx + fault.occluder_offset * height
    draw_upright(draw, fault.occluder, x, top - 0.03 * height, height * 1.08, phase + 1.3, "side", squash)


@dataclass(frozen=True)
class FrameFault:
    """What went wrong in one frame: the box slid by `shift` (fractions of the crop's width and height), a
    passer-by `occluder` walks in front, `occluder_offset` person heights beside it, or motion blur along a line of
    `blur` x the crop's height at `blur_angle` degrees."""

    kind: str = "clean"  # clean | drift | occlusion | motion_blur
    shift: tuple[float, float] = (0.0, 0.0)
    occluder: Appearance | None = None
    occluder_offset: float = 0.0
    blur: float = 0.0
    blur_angle: float = 0.0


CLEAN = FrameFault()


def render_ground(app: Appearance, size: tuple[int, int], phase: float, view: str, wall: Color, floor: Color,
                  rng: np.random.Generator, fault: FrameFault = CLEAN) -> Image.Image:
    """A sharp ground-camera crop (W, H) with the person filling most of its height."""
    w, h = size
    scale = 2
    canvas = textured_background((w * scale, h * scale), wall, rng, grain=4.0, floor=floor, floor_from=0.82)
    draw = ImageDraw.Draw(canvas)
    height = h * scale * float(rng.uniform(0.86, 0.9))
    cx = w * scale / 2 + float(rng.normal(0.0, 0.8)) + fault.shift[0] * w * scale
    top = h * scale * 0.05 + abs(math.sin(phase)) * 1.5 + fault.shift[1] * h * scale
    draw_upright(draw, app, cx, top, height, phase, view)
    if fault.occluder is not None:
        _draw_occluder(draw, fault, cx, top, height, phase)
    image = canvas.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=None)
    return motion_blur(image, fault.blur * image.height, fault.blur_angle) if fault.blur > 0 else image


def render_aerial(app: Appearance, person_px: float, pitch: float, phase: float, view: str, ground: Color,
                  rng: np.random.Generator, fault: FrameFault = CLEAN) -> Image.Image:
    """A drone crop: a person `person_px` pixels tall (before foreshortening) seen at `pitch` degrees."""
    scale = 3
    H = person_px * scale
    dx, dy = fault.shift
    if pitch >= 80:  # a detector box around the top-down blob
        side = int(math.ceil(0.42 * H)) + 2
        canvas = textured_background((side, side), ground, rng, grain=12.0)
        draw = ImageDraw.Draw(canvas)
        cx, cy = side / 2 + dx * side, side / 2 + dy * side
        draw_top_down(draw, app, cx, cy, H, phase)
        if fault.occluder is not None:
            draw_top_down(draw, fault.occluder, cx + fault.occluder_offset * H, cy - 0.1 * side, H, phase + 1.3)
    else:  # a tight detector box: torso and swinging limbs fill most of its width
        squash = math.cos(math.radians(pitch)) * 0.8 + 0.2
        w, h = int(math.ceil(0.48 * H)) + 2, int(math.ceil(H * squash + 0.1 * H)) + 2
        canvas = textured_background((w, h), ground, rng, grain=12.0)
        draw = ImageDraw.Draw(canvas)
        cx, top = w / 2 + dx * w, 0.04 * H + dy * h
        draw_upright(draw, app, cx, top, H, phase, view, squash)
        if fault.occluder is not None:
            _draw_occluder(draw, fault, cx, top, H, phase, squash)
    w, h = canvas.size
    image = canvas.resize((max(4, round(w / scale)), max(4, round(h / scale))), Image.Resampling.BOX)
    return motion_blur(image, fault.blur * image.height, fault.blur_angle) if fault.blur > 0 else image
