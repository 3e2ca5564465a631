"""Who a synthetic person is: clothing colours and patterns, body proportions, hair, accessories.

Colours come from a shared palette (many people wear black or blue, as in real data) with a small per-identity
shift, so identities are separable but not trivially. `for_session` applies the between-session changes an
identity may have in the second aerial session (another top, a bag taken off), which keeps aerial-to-aerial
matching harder than matching against the ground reference, as on the real benchmark.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

Color = tuple[int, int, int]

TOPS: dict[str, Color] = {
    "black": (30, 30, 34), "white": (225, 225, 220), "gray": (128, 128, 128), "navy": (30, 40, 90),
    "blue": (40, 90, 190), "red": (185, 35, 40), "green": (40, 130, 60), "yellow": (225, 200, 50),
    "brown": (110, 70, 40), "beige": (200, 180, 140), "pink": (230, 130, 170), "purple": (110, 50, 140),
    "orange": (235, 120, 30), "teal": (20, 140, 140),
}
TOP_WEIGHTS = [10, 7, 6, 6, 7, 5, 4, 3, 3, 3, 3, 2, 2, 2]
BOTTOMS: dict[str, Color] = {
    "jeans": (50, 70, 120), "black": (28, 28, 30), "gray": (110, 110, 115), "beige": (190, 170, 130),
    "brown": (100, 70, 45), "olive": (95, 100, 55), "white": (215, 215, 210), "red": (150, 35, 40),
}
BOTTOM_WEIGHTS = [10, 9, 5, 4, 3, 3, 2, 1]
SHOES: dict[str, Color] = {"white": (230, 230, 230), "black": (25, 25, 25), "brown": (90, 55, 30), "red": (190, 40, 40)}
HAIR: dict[str, Color] = {"black": (20, 18, 16), "brown": (80, 50, 30), "blonde": (200, 170, 100), "gray": (150, 150, 150)}
SKIN: tuple[Color, ...] = ((240, 200, 170), (220, 175, 140), (190, 140, 100), (140, 95, 65), (95, 65, 45))
PATTERNS = ("solid", "hstripes", "vstripes", "two_tone", "checks", "logo")
HAIR_STYLES = ("short", "long", "bald")
BOTTOM_TYPES = ("trousers", "shorts", "skirt")


def _shift(color: Color, rng: np.random.Generator, amount: int = 14) -> Color:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)  # type: ignore[return-value]


@dataclass(frozen=True)
class Appearance:
    top_name: str
    top: Color
    pattern: str
    accent: Color  # second colour of the top's pattern
    bottom_name: str
    bottom: Color
    bottom_type: str
    shoes_name: str
    shoes: Color
    hair_name: str
    hair: Color
    hair_style: str
    skin: Color
    long_sleeves: bool
    build: float  # shoulder width relative to the average
    leg_fraction: float  # legs as a fraction of body height
    head_scale: float
    backpack: Color | None
    handbag: Color | None
    hat: Color | None
    gender: str
    age: int
    height_cm: int
    weight_kg: int

    def for_session(self, session: int, changes: bool) -> "Appearance":
        """The look in aerial session `session`; with `changes`, session 2 wears another top and no backpack."""
        if session != 2 or not changes:
            return self
        names = [n for n in TOPS if n != self.top_name]
        new_top = names[(len(self.top_name) * 7 + self.age) % len(names)]
        return dataclasses.replace(self, top_name=new_top, top=TOPS[new_top], pattern="solid", backpack=None)

    def soft_biometrics(self) -> list[int]:
        """Codes for the DetReIDX name fields HairColor..Accessories (indices into our tables, -1 = none)."""
        return [
            list(HAIR).index(self.hair_name), HAIR_STYLES.index(self.hair_style), 0, 0, -1,
            -1 if self.hat is None else 1, list(TOPS).index(self.top_name), list(BOTTOMS).index(self.bottom_name),
            list(SHOES).index(self.shoes_name), int(self.backpack is not None) + 2 * int(self.handbag is not None),
        ]


def sample_appearance(rng: np.random.Generator) -> Appearance:
    def pick(table: dict[str, Color], weights: list[int] | None = None) -> str:
        p = None if weights is None else np.asarray(weights, float) / sum(weights)
        return list(table)[int(rng.choice(len(table), p=p))]

    top_name = pick(TOPS, TOP_WEIGHTS)
    accent_name = pick({k: v for k, v in TOPS.items() if k != top_name})
    bottom_name = pick(BOTTOMS, BOTTOM_WEIGHTS)
    shoes_name, hair_name = pick(SHOES), pick(HAIR)
    gender = "F" if rng.random() < 0.45 else "M"
    bag_colors = [(35, 35, 40), (120, 30, 30), (40, 60, 110), (150, 110, 60), (60, 100, 60)]

    def maybe(p: float) -> Color | None:
        return _shift(bag_colors[int(rng.integers(len(bag_colors)))], rng) if rng.random() < p else None

    height_cm = int(rng.normal(176 if gender == "M" else 164, 7))
    return Appearance(
        top_name=top_name, top=_shift(TOPS[top_name], rng), pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
        accent=_shift(TOPS[accent_name], rng),
        bottom_name=bottom_name, bottom=_shift(BOTTOMS[bottom_name], rng),
        bottom_type=str(rng.choice(BOTTOM_TYPES, p=[0.7, 0.15, 0.15] if gender == "F" else [0.85, 0.15, 0.0])),
        shoes_name=shoes_name, shoes=_shift(SHOES[shoes_name], rng, 8),
        hair_name=hair_name, hair=_shift(HAIR[hair_name], rng, 8),
        hair_style=str(rng.choice(HAIR_STYLES, p=[0.35, 0.6, 0.05] if gender == "F" else [0.8, 0.1, 0.1])),
        skin=SKIN[int(rng.integers(len(SKIN)))], long_sleeves=bool(rng.random() < 0.6),
        build=float(rng.uniform(0.8, 1.25)), leg_fraction=float(rng.uniform(0.43, 0.53)),
        head_scale=float(rng.uniform(0.9, 1.1)),
        backpack=maybe(0.35), handbag=maybe(0.2), hat=maybe(0.15),
        gender=gender, age=int(rng.integers(18, 65)), height_cm=height_cm,
        weight_kg=int(np.clip(rng.normal(75 if gender == "M" else 62, 9), 45, 120)),
    )
