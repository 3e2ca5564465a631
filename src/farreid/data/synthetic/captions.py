"""Captions of synthetic person renders, written from the generator's own attributes.

Vision-language pretraining needs image-text pairs; here the text is true by construction: each caption names a
random subset of what the renderer drew (top colour and pattern, bottoms, shoes, hair, bags, hat, body), the
view, and the platform with its altitude. Several templates and the random subset keep the captions varied, as
real alt-text is, so the text tower learns attribute words rather than one fixed sentence.

    caption(appearance, CaptionView("aerial", "back", altitude=40.0), rng)
    -> "a drone photo from 40 m up of a man wearing a red striped top and black trousers, with a backpack, from behind"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farreid.data.synthetic.appearance import Appearance

PATTERN_WORDS = {"solid": "", "hstripes": "striped", "vstripes": "pinstriped", "two_tone": "two-tone",
                 "checks": "checked", "logo": "logo"}
BOTTOM_WORDS = {"trousers": "trousers", "shorts": "shorts", "skirt": "skirt"}
VIEW_WORDS = {"front": "from the front", "back": "from behind", "side": "from the side", "top": "from straight above"}


@dataclass(frozen=True)
class CaptionView:
    """How the render was taken: `platform` ground or aerial, `view` front/back/side/top, drone altitude in m."""

    platform: str
    view: str
    altitude: float | None = None


def top_phrase(app: Appearance) -> str:
    pattern = PATTERN_WORDS[app.pattern]
    return " ".join(w for w in (app.top_name, pattern, "top") if w)


def bottom_phrase(app: Appearance) -> str:
    colour = "blue" if app.bottom_name == "jeans" else app.bottom_name
    kind = "jeans" if app.bottom_name == "jeans" and app.bottom_type == "trousers" else BOTTOM_WORDS[app.bottom_type]
    return f"{colour} {kind}"


def person_word(app: Appearance, rng: np.random.Generator) -> str:
    words = ("woman", "person", "pedestrian") if app.gender == "F" else ("man", "person", "pedestrian")
    return words[int(rng.integers(len(words)))]


def platform_phrase(view: CaptionView, rng: np.random.Generator) -> str:
    if view.platform == "ground":
        return str(rng.choice(["a photo", "a ground camera photo", "a surveillance camera image", "a picture"]))
    height = f"{view.altitude:.0f} m" if view.altitude is not None else "high"
    far = view.altitude is not None and view.altitude >= 40
    return str(rng.choice([
        f"a drone photo from {height} up", f"an aerial view from {height}",
        "a blurry drone photo" if far else "a drone photo", f"a {'far' if far else 'low'} aerial shot",
    ]))


def attribute_phrases(app: Appearance, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(worn, carried) phrases of a caption: the top always (the most visible cue from any height), the rest at
    random; carried covers what a person is "with" (hair, bags, a hat)."""
    top = top_phrase(app)
    worn = [f"{'an' if top[0] in 'aeiou' else 'a'} {top}"]
    for p, text in ((0.7, bottom_phrase(app)), (0.3, f"{app.shoes_name} shoes"),
                    (0.25, "long sleeves" if app.long_sleeves else "short sleeves")):
        if rng.random() < p:
            worn.append(text)
    carried = []
    for p, text in ((0.35, "" if app.hair_style == "bald" else f"{app.hair_style} {app.hair_name} hair"),
                    (0.6, "a backpack" if app.backpack is not None else ""),
                    (0.4, "a handbag" if app.handbag is not None else ""),
                    (0.4, "a hat" if app.hat is not None else "")):
        if text and rng.random() < p:
            carried.append(text)
    return worn, carried


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


TEMPLATES = (
    "{platform} of a {who} wearing {worn}{carried}, {view}",
    "{platform} of a {who} in {worn}{carried}",
    "a {who} wearing {worn}{carried}, {view}",
    "{worn_cap}{carried}; {platform}",
    "{platform}: {who} in {worn}{carried}",
)


def caption(app: Appearance, view: CaptionView, rng: np.random.Generator) -> str:
    """One caption of a render of `app` seen as `view`; `rng` picks the template and the attributes named."""
    worn, carried = attribute_phrases(app, rng)
    worn_text = _join(worn)
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    return template.format(
        platform=platform_phrase(view, rng), who=person_word(app, rng), worn=worn_text,
        worn_cap=worn_text[0].upper() + worn_text[1:], carried=f", with {_join(carried)}" if carried else "",
        view=VIEW_WORDS[view.view],
    )


def attribute_query(name: str, value: str) -> str:
    """The zero-shot retrieval text for one attribute value, e.g. ("top", "red") -> "a person in a red top"."""
    if name == "top":
        return f"a person in {'an' if value[0] in 'aeiou' else 'a'} {value} top"
    if name == "bottom":
        return f"a person in {'blue jeans' if value == 'jeans' else value + ' trousers'}"
    if name == "bag":
        return "a person with a backpack" if value == "backpack" else "a person without a backpack"
    raise ValueError(f"no query for attribute {name!r}")
