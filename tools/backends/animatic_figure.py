"""The animatic painter's figures: each character's look from its look tags, where figures stand
for a framing, and how a figure (body, hair, face with its expression) is drawn. Shared constants
(safe area, aliases) live here too. Deterministic: a function of the character id and tags.
"""
from __future__ import annotations

import colorsys
import hashlib
import math
import random
import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from memory.errors import InputError
from tools.backends._draw import (
    RGB,
    find_color_word,
    mix,
    shade,
)
from tools.backends.protocols import CAMERA_MOVES, FRAMINGS, CharacterInShot, PanelRequest

MODEL = "animatic-v1"

# 9:16 safe area, as fractions of the frame. Short-video apps cover the top ~12% (status bar,
# "Following / For you" tabs) and the bottom ~20% (caption, author, music ticker); the right-hand
# action rail needs ~6% on that side, kept symmetric. Faces, bubbles and labels stay inside.
SAFE_TOP = 0.12
SAFE_BOTTOM = 0.20
SAFE_SIDE = 0.06

KINDS = ("panel", "character_sheet", "background")
_INK: RGB = (38, 32, 48)
_WHITE: RGB = (250, 250, 246)

_FRAMING_ALIASES = {
    "establishing shot": "establishing", "extreme wide": "establishing", "extreme long shot": "establishing",
    "wide shot": "wide", "long shot": "wide", "full shot": "wide", "full": "wide", "ws": "wide", "ls": "wide",
    "medium shot": "medium", "mid": "medium", "mid shot": "medium", "ms": "medium", "cowboy": "medium",
    "medium close-up": "close-up", "closeup": "close-up", "close up": "close-up", "cu": "close-up",
    "mcu": "close-up", "extreme closeup": "extreme close-up", "extreme close up": "extreme close-up",
    "ecu": "extreme close-up", "xcu": "extreme close-up",
}
_MOVE_ALIASES = {
    "dolly in": "push-in", "zoom in": "push-in", "push in": "push-in", "dolly out": "pull-out",
    "zoom out": "pull-out", "pull out": "pull-out", "pull back": "pull-out", "truck": "pan",
    "pan left": "pan", "pan right": "pan", "tilt up": "tilt", "tilt down": "tilt", "handheld": "shake",
    "none": "static", "": "static",
}

_EXPRESSION_WORDS = {
    "laughing": ("laugh", "laughing", "giggle", "giggling"),
    "crying": ("cry", "crying", "tearful", "tears", "sobbing", "weeping"),
    "happy": ("happy", "smile", "smiling", "joy", "joyful", "cheerful", "glad", "excited", "delighted"),
    "sad": ("sad", "down", "melancholy", "gloomy", "hurt", "lonely", "disappointed", "sorrowful"),
    "angry": ("angry", "furious", "mad", "annoyed", "irritated", "rage", "enraged", "frustrated"),
    "surprised": ("surprised", "shocked", "astonished", "amazed", "startled", "stunned"),
    "scared": ("scared", "afraid", "fear", "fearful", "worried", "anxious", "nervous", "panicked",
               "terrified", "uneasy"),
    "determined": ("determined", "resolute", "serious", "focused", "confident", "resolved", "stern"),
    "embarrassed": ("embarrassed", "shy", "blushing", "flustered", "bashful"),
    "smirk": ("smirk", "smirking", "smug", "sly", "teasing", "mischievous"),
    "thinking": ("thinking", "pensive", "curious", "puzzled", "confused", "thoughtful", "doubtful"),
}

# Per expression: brow (inner, outer) raise in head units (negative = up), upper-lid cover at
# (inner, outer) as a fraction of the eye, pupil scale, mouth shape, cheek extra.
_FACE = {
    "neutral": ((0.0, 0.0), (0.0, 0.0), 1.0, "line", None),
    "happy": ((-0.02, -0.01), (0.0, 0.0), 1.0, "smile", "blush"),
    "laughing": ((-0.03, -0.02), (0.0, 0.0), 1.0, "laugh", "blush"),
    "sad": ((-0.05, 0.02), (0.08, 0.3), 1.0, "frown", None),
    "crying": ((-0.05, 0.02), (0.1, 0.32), 1.0, "wail", "tears"),
    "angry": ((0.05, -0.03), (0.38, 0.08), 0.85, "teeth", None),
    "surprised": ((-0.07, -0.06), (0.0, 0.0), 0.55, "o", None),
    "scared": ((-0.06, 0.01), (0.0, 0.05), 0.6, "wavy", "sweat"),
    "determined": ((0.035, -0.02), (0.22, 0.05), 1.0, "firm", None),
    "embarrassed": ((-0.03, 0.01), (0.12, 0.12), 1.0, "wavy", "blush"),
    "smirk": ((0.0, -0.03), (0.2, 0.2), 1.0, "smirk", None),
    "thinking": ((-0.03, 0.0), (0.28, 0.28), 1.0, "side", None),
}


# --------------------------------------------------------------------------- small helpers


def _digest(*parts: object) -> int:
    """A stable 64-bit integer from the given values (Python's hash() is salted per process)."""
    text = "\x1f".join(repr(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _hls(hue_deg: float, light: float, sat: float) -> RGB:
    red, green, blue = colorsys.hls_to_rgb((hue_deg % 360) / 360, light, sat)
    return (round(red * 255), round(green * 255), round(blue * 255))


def _slug(text: str, what: str) -> str:
    slug = re.sub(r"[^\w.-]+", "_", text.strip()).strip("._")
    if not slug:
        raise InputError(f"{what} {text!r} cannot name a file; use letters, digits, '-' or '_'")
    return slug


def _words(*texts: str) -> set[str]:
    found: set[str] = set()
    for text in texts:
        found.update(re.findall(r"[a-z]+", text.lower()))
    return found


def _bezier(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float], n: int = 8) -> list[tuple[float, float]]:
    """Points on a quadratic Bezier: smooth jaws, shoulders and hair tips from three points."""
    out = []
    for i in range(n + 1):
        t = i / n
        a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t * t
        out.append((a * p0[0] + b * p1[0] + c * p2[0], a * p0[1] + b * p1[1] + c * p2[1]))
    return out


def _mirror(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(-x, y) for x, y in reversed(points)]


def safe_rect(width: int, height: int) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) pixel box where faces, bubbles and labels must stay."""
    return (round(width * SAFE_SIDE), round(height * SAFE_TOP),
            round(width * (1 - SAFE_SIDE)), round(height * (1 - SAFE_BOTTOM)))


def canonical_expression(expression: str) -> str:
    """Map a free-text expression ('slightly worried', 'smug') to one the face can draw."""
    words = _words(expression)
    for canonical, synonyms in _EXPRESSION_WORDS.items():
        if words & set(synonyms):
            return canonical
    return "neutral"


def _canonical_framing(framing: str) -> str:
    key = framing.strip().lower().replace("_", " ")
    key = _FRAMING_ALIASES.get(key, key.replace(" ", "-") if key.replace(" ", "-") in FRAMINGS else key)
    if key not in FRAMINGS:
        raise InputError(f"framing {framing!r} is unknown; use one of {', '.join(FRAMINGS)}")
    return key


def _canonical_move(move: str) -> str:
    key = move.strip().lower().replace("_", " ")
    key = _MOVE_ALIASES.get(key, key.replace(" ", "-"))
    if key not in CAMERA_MOVES:
        raise InputError(f"camera move {move!r} is unknown; use one of {', '.join(CAMERA_MOVES)}")
    return key


# --------------------------------------------------------------------------- character looks

_HAIR_WORDS = {"hair", "haired", "bob", "ponytail", "twintails", "tails", "braid", "braids", "bangs", "locks"}
_EYE_WORDS = {"eyes", "eye", "eyed"}
_LEG_WORDS = {"skirt", "pants", "jeans", "trousers", "shorts", "leggings"}
_ACCESSORY_WORDS = {"scarf": "scarf", "muffler": "scarf", "ribbon": "ribbon", "bow": "ribbon",
                    "tie": "tie", "necktie": "tie", "headband": "headband", "hairband": "headband",
                    "hairclip": "hairclip", "hairpin": "hairclip", "clip": "hairclip"}
#: garment shapes the figure can wear, in priority order: the first one a look tag names wins
#: ("white kimono, red obi" is a kimono; "school uniform, navy blazer" a uniform)
GARMENTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("armor", frozenset({"armor", "armour", "breastplate", "chainmail", "pauldrons", "cuirass"})),
    ("kimono", frozenset({"kimono", "yukata", "furisode", "hakama", "haori", "miko"})),
    ("robe", frozenset({"robe", "robes", "cloak", "cape", "cassock", "vestments", "bathrobe", "habit"})),
    ("dress", frozenset({"dress", "gown", "sundress", "frock"})),
    ("suit", frozenset({"suit", "tuxedo"})),
    ("uniform", frozenset({"uniform", "sailor", "seifuku", "gakuran", "blazer"})),
    ("hoodie", frozenset({"hoodie", "hooded", "sweatshirt"})),
    ("coat", frozenset({"coat", "overcoat", "trench", "trenchcoat", "parka", "raincoat", "greatcoat"})),
    ("jacket", frozenset({"jacket", "cardigan"})),
)
_OUTFIT_WORDS = {"shirt", "sweater", "top", "outfit", "clothes", "vest", "blouse", "tshirt", "jersey", "apron",
                 "tunic"}.union(*(words for _, words in GARMENTS))
_SASH_WORDS = {"obi", "sash", "belt", "cord"}
_STEEL: RGB = (150, 156, 168)
#: build words: (height factor, width factor); a word in a hair tag ("short hair") never counts
_BODY_WORDS: dict[str, tuple[float | None, float | None]] = {
    "child": (0.74, 0.95), "kid": (0.74, 0.95), "toddler": (0.62, 1.0), "little": (0.8, None),
    "teen": (0.95, None), "teenager": (0.95, None), "teenage": (0.95, None),
    "elderly": (0.95, None), "old": (0.95, None), "aged": (0.95, None), "ancient": (0.94, None),
    "tall": (1.1, None), "lanky": (1.1, 0.86), "giant": (1.22, 1.3), "short": (0.88, None),
    "small": (0.88, None), "tiny": (0.8, None), "petite": (0.88, 0.9),
    "stout": (None, 1.3), "burly": (None, 1.3), "plump": (None, 1.28), "heavyset": (None, 1.3),
    "chubby": (None, 1.25), "broad": (None, 1.2), "muscular": (None, 1.2), "big": (1.05, 1.2),
    "slender": (None, 0.86), "slim": (None, 0.88), "thin": (None, 0.85), "skinny": (None, 0.84),
    "frail": (0.97, 0.84),
}
_OLD_WORDS = {"elderly", "old", "aged", "ancient", "grandmother", "grandfather", "granny", "grandpa"}
_HAIR_PALETTE: tuple[RGB, ...] = ((44, 38, 48), (92, 60, 44), (140, 86, 52), (226, 196, 120),
                                  (236, 150, 170), (196, 200, 214), (66, 96, 170), (170, 52, 60),
                                  (110, 80, 150), (70, 40, 36))
_EYE_PALETTE: tuple[RGB, ...] = ((70, 110, 200), (120, 70, 50), (60, 140, 90), (160, 60, 150),
                                 (200, 120, 40), (180, 40, 50), (90, 90, 110))
_OUTFIT_PALETTE: tuple[RGB, ...] = ((44, 58, 100), (150, 40, 50), (60, 110, 80), (230, 226, 214),
                                    (60, 60, 70), (120, 90, 160), (200, 130, 60), (70, 130, 180))
_SKIN_TONES: tuple[RGB, ...] = ((252, 226, 206), (246, 212, 186), (230, 188, 156))
_HAIR_STYLES = ("short", "long", "bob", "ponytail", "twintails", "spiky", "braid")


@dataclass(frozen=True)
class CharacterLook:
    """Everything that makes a figure recognisable; a function of (id, look tags) only."""

    hair: RGB
    eyes: RGB
    skin: RGB
    outfit: RGB
    legs: RGB
    accent: RGB
    hair_style: str
    skirt: bool
    accessory: str | None
    hat: str | None
    glasses: bool
    garment: str = "shirt"            # "shirt" or one of GARMENTS: the shape of the clothes
    style: str = ""                   # a garment's variant ("sailor", "gakuran", "blazer" for a uniform)
    sash: RGB = (120, 40, 50)         # obi / belt colour
    height: float = 1.0               # figure size relative to an adult of the framing (child ≈ 0.74)
    build: float = 1.0                # body width (stout ≈ 1.3, slender ≈ 0.86); the head keeps its size
    elderly: bool = False


def garment_for(look_tags: tuple[str, ...] | list[str]) -> tuple[str, str]:
    """(garment, variant) that the look tags name (see GARMENTS); ("shirt", "") when none does."""
    words = _words(" , ".join(look_tags))
    for garment, names in GARMENTS:
        if words & names:
            style = ""
            if garment == "uniform":
                style = "sailor" if words & {"sailor", "seifuku"} else "gakuran" if "gakuran" in words else "blazer"
            return garment, style
    return "shirt", ""


def body_for(character_id: str, look_tags: tuple[str, ...] | list[str]) -> tuple[float, float, bool]:
    """(height, build, elderly) from build and age words in the look tags ("child", "tall", "stout",
    "elderly"…); what no word says varies a little per character (deterministic per id), so two
    plain characters side by side do not look like copies."""
    rng = random.Random(_digest("body", character_id))
    height, build = rng.uniform(0.95, 1.05), rng.uniform(0.93, 1.08)
    elderly = False
    for tag in look_tags:
        tag_words = _words(tag)
        if tag_words & (_HAIR_WORDS | _EYE_WORDS):
            continue
        for word in tag_words:
            if word in _OLD_WORDS:
                elderly = True
            h, b = _BODY_WORDS.get(word, (None, None))
            height = h if h is not None else height
            build = b if b is not None else build
    return height, build, elderly


def character_look(character: CharacterInShot) -> CharacterLook:
    """Colours and silhouette for a character: parsed from look tags where they say ('silver
    hair', 'red scarf', 'twin tails'), otherwise picked deterministically from the id, so the
    same character looks the same in every panel whatever the framing, mood or company."""
    rng = random.Random(_digest("look", character.id))
    hair = rng.choice(_HAIR_PALETTE)
    eyes = rng.choice(_EYE_PALETTE)
    skin = rng.choice(_SKIN_TONES)
    outfit = rng.choice(_OUTFIT_PALETTE)
    accent = _hls(rng.uniform(0, 360), 0.55, 0.65)
    hair_style = rng.choice(_HAIR_STYLES)
    skirt = rng.random() < 0.5
    legs: RGB | None = None
    accessory: str | None = None
    hat: str | None = None
    glasses = False

    tags = " , ".join(character.look_tags).lower()
    words = _words(tags)
    garment, style = garment_for(character.look_tags)
    height, build, elderly = body_for(character.id, character.look_tags)
    sash: RGB | None = None
    outfit_named = hair_named = False
    if words & {"twintails", "pigtails"} or re.search(r"twin[ -]?tails|pig[ -]?tails", tags):
        hair_style = "twintails"
    elif words & {"ponytail"} or "pony tail" in tags:
        hair_style = "ponytail"
    elif words & {"braid", "braids", "braided"}:
        hair_style = "braid"
    elif words & {"bob"}:
        hair_style = "bob"
    elif words & {"spiky", "messy", "tousled"}:
        hair_style = "spiky"
    elif "long" in words and words & _HAIR_WORDS:
        hair_style = "long"
    elif "short" in words and words & _HAIR_WORDS:
        hair_style = "short"
    if words & {"skirt", "dress", "sailor", "gown"}:
        skirt = True
    elif words & {"pants", "jeans", "trousers", "gakuran", "suit", "hakama"} or garment in ("armor", "suit"):
        skirt = False
    if words & {"glasses", "spectacles", "megane"}:
        glasses = True
    if words & {"cap", "beret"}:
        hat = "cap"
    elif "hat" in words:
        hat = "hat"

    for tag in character.look_tags:
        tag_words = _words(tag)
        color = find_color_word(tag)
        for word in tag_words:
            if word in _ACCESSORY_WORDS and accessory is None:
                accessory = _ACCESSORY_WORDS[word]
        if color is None:
            if tag_words & {"pale", "fair"} and "skin" in tag_words:
                skin = (253, 232, 218)
            elif tag_words & {"tan", "tanned"} and "skin" in tag_words:
                skin = (214, 164, 124)
            elif "dark" in tag_words and "skin" in tag_words:
                skin = (150, 100, 74)
            continue
        if tag_words & _HAIR_WORDS:
            hair, hair_named = color, True
        elif tag_words & _EYE_WORDS:
            eyes = color
        elif tag_words & _SASH_WORDS:
            sash = color
        elif tag_words & _LEG_WORDS:
            legs = color
        elif tag_words & set(_ACCESSORY_WORDS) or tag_words & {"hat", "cap", "beret"}:
            accent = color
        elif tag_words & _OUTFIT_WORDS:
            outfit, outfit_named = color, True
        elif "skin" in tag_words:
            skin = color
    if garment == "suit" and accessory is None:
        accessory = "tie"
    if accessory is None and rng.random() < 0.5:
        # a tie belongs to a shirt collar: not on a kimono, robe, dress, armour or hoodie
        shirtlike = garment in ("shirt", "suit", "uniform", "coat", "jacket")
        accessory = rng.choice(("ribbon", "tie", "scarf", "hairclip") if shirtlike else
                               ("ribbon", "hairclip") if garment in ("dress", "hoodie") else ("hairclip", "headband"))
    if garment == "armor" and not outfit_named:
        outfit = _STEEL
    if elderly and not hair_named:
        hair = (200, 200, 206)
    if garment == "dress":
        skirt = True
    if legs is None:
        legs = shade(outfit, 0.7) if not skirt else mix(outfit, _INK, 0.35)
    return CharacterLook(hair=hair, eyes=eyes, skin=skin, outfit=outfit, legs=legs, accent=accent,
                         hair_style=hair_style, skirt=skirt, accessory=accessory, hat=hat, glasses=glasses,
                         garment=garment, style=style, sash=sash or mix(accent, _INK, 0.2), height=height,
                         build=build, elderly=elderly)


# --------------------------------------------------------------------------- figure layout


@dataclass(frozen=True)
class Placement:
    """Where one character sits in the panel, in frame pixels (for tests and the motion step).

    ``box`` is the character layer's opaque-content box (its sprite), ``face`` the box that the
    eyes-closed / mouth-open variants may change, ``mouth`` where a speech bubble points.
    """

    character_id: str
    visible: bool
    unit: float                       # head height in pixels
    center_x: float
    head_top: float
    box: tuple[int, int, int, int]
    face: tuple[int, int, int, int]
    mouth: tuple[float, float]


# Figure extents in head units around the head-top centre.
_FIG_LEFT, _FIG_RIGHT, _FIG_TOP, _FIG_FEET = -1.05, 1.05, -0.4, 6.1
_FACE_BOX = (-0.4, 0.34, 0.4, 1.0)


def _visible_characters(request: PanelRequest, framing: str) -> list[CharacterInShot]:
    characters = list(request.characters)
    if framing == "extreme close-up" and characters:
        speakers = [c for c in characters if c.speaking]
        return [speakers[0] if speakers else characters[0]]
    return characters


def plan_figures(request: PanelRequest) -> list[Placement]:
    """Lay the request's characters out left to right, sized by framing, inside the safe area.

    Establishing: small full figures; wide: full body; medium: waist up; close-up: head and
    shoulders across most of the width; extreme close-up: one face filling the safe area.
    """
    framing = _canonical_framing(request.framing)
    width, height = request.width, request.height
    left, top, right, bottom = safe_rect(width, height)
    safe_w, safe_h = right - left, bottom - top
    visible = _visible_characters(request, framing)
    count = max(1, len(visible))
    horizon = _horizon(request, framing) * height

    if framing == "establishing":
        unit = min(safe_h * 0.045, safe_w / (count * 2.6))
        feet = max(horizon + unit * 1.5, bottom - safe_h * 0.12)
        head_tops = [feet - unit * 6.0] * count
    elif framing == "wide":
        unit = min(safe_h * 0.105, safe_w / (count * 1.9))
        feet = bottom - safe_h * 0.05
        head_tops = [feet - unit * 6.0] * count
    elif framing == "medium":
        unit = min(safe_w * 0.3, safe_w / (count * 1.55))
        head_tops = [top + safe_h * 0.1] * count
    elif framing == "close-up":
        unit = min(safe_w * 0.62, safe_w / (count * 1.3))
        head_tops = [top + safe_h * 0.08] * count
    else:  # extreme close-up: the face fills the safe width, eyes a little above centre
        unit = min(safe_w * 1.0, safe_h * 0.95)
        head_tops = [top + safe_h * 0.5 - unit * 0.6]

    placements: list[Placement] = []
    shown = {c.id for c in visible}
    slot = 0
    base_unit = unit
    for character in request.characters:
        if character.id not in shown:
            placements.append(Placement(character.id, False, 0.0, 0.0, 0.0, (0, 0, 0, 0), (0, 0, 0, 0), (0.0, 0.0)))
            continue
        center_x = left + safe_w * (slot + 0.5) / count
        head_top = head_tops[slot]
        slot += 1
        look = character_look(character)
        reach = max(1.0, look.build)        # a broad figure's arms reach further out
        if framing != "extreme close-up":   # body type: a child is smaller, feet on the same floor
            unit = base_unit * look.height
            if framing in ("establishing", "wide"):
                head_top += (base_unit - unit) * 6.0
            else:
                head_top += (base_unit - unit) * 1.2
        box = (
            max(left, math.floor(center_x + _FIG_LEFT * reach * unit)),
            max(top, math.floor(head_top + _FIG_TOP * unit)),
            min(right, math.ceil(center_x + _FIG_RIGHT * reach * unit)),
            min(bottom, math.ceil(head_top + _FIG_FEET * unit)),
        )
        face = (
            max(box[0], math.floor(center_x + _FACE_BOX[0] * unit)),
            max(box[1], math.floor(head_top + _FACE_BOX[1] * unit)),
            min(box[2], math.ceil(center_x + _FACE_BOX[2] * unit)),
            min(box[3], math.ceil(head_top + _FACE_BOX[3] * unit)),
        )
        mouth = (center_x, head_top + 0.84 * unit)
        placements.append(Placement(character.id, True, unit, center_x, head_top, box, face, mouth))
    return placements


def _horizon(request: PanelRequest, framing: str) -> float:
    """Horizon height as a fraction of the frame: the camera angle shows through it."""
    angle = request.angle.lower()
    if any(word in angle for word in ("high", "bird", "overhead", "top")):
        return 0.34
    if any(word in angle for word in ("low", "worm")):
        return 0.7
    return 0.56 if framing in ("establishing", "wide") else 0.52


# --------------------------------------------------------------------------- figure drawing


class _Pen:
    """Draws in head units around an origin, so one figure description serves every size."""

    def __init__(self, image: Image.Image, origin: tuple[float, float], unit: float) -> None:
        self.draw = ImageDraw.Draw(image)
        self.ox, self.oy, self.unit = origin[0], origin[1], unit
        self.line_w = max(1, round(unit * 0.016))
        self.sx = 1.0                   # horizontal stretch: the body's build (the head stays 1.0)

    def pt(self, x: float, y: float) -> tuple[float, float]:
        return (self.ox + x * self.unit * self.sx, self.oy + y * self.unit)

    def poly(self, points: list[tuple[float, float]], fill: RGB | tuple[int, int, int, int],
             outline: bool = True) -> None:
        xy = [self.pt(x, y) for x, y in points]
        edge = shade(fill[:3], 0.45) if outline else None
        self.draw.polygon(xy, fill=fill, outline=edge, width=self.line_w if outline else 0)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill: RGB | tuple[int, int, int, int] | None,
                outline: RGB | None = None, width: float | None = None) -> None:
        a, b = self.pt(x0, y0), self.pt(x1, y1)
        line = self.line_w if width is None else max(1, round(width * self.unit))
        self.draw.ellipse((a[0], a[1], max(a[0], b[0]), max(a[1], b[1])), fill=fill, outline=outline,
                          width=line if outline is not None else 0)

    def line(self, points: list[tuple[float, float]], fill: RGB, width: float) -> None:
        self.draw.line([self.pt(x, y) for x, y in points], fill=fill,
                       width=max(1, round(width * self.unit)), joint="curve")


def _head_outline() -> list[tuple[float, float]]:
    cranium = [(0.45 * math.cos(a), 0.47 + 0.47 * math.sin(a))
               for a in (math.pi + math.pi * i / 14 for i in range(15))]
    jaw = _bezier((0.45, 0.47), (0.44, 0.86), (0.07, 0.99), 8)[1:] + [(0.0, 1.0)]
    return cranium + jaw + _mirror(jaw)[1:]


def _bangs_outline(style: str) -> list[tuple[float, float]]:
    top = [(0.49 * math.cos(a), 0.47 + 0.5 * math.sin(a)) for a in (math.pi + math.pi * i / 12 for i in range(13))]
    if style == "spiky":
        tips = [(0.52, 0.62), (0.4, 0.34), (0.3, 0.5), (0.16, 0.3), (0.04, 0.46), (-0.1, 0.28),
                (-0.22, 0.46), (-0.34, 0.3), (-0.46, 0.52), (-0.5, 0.42)]
    else:
        tips = [(0.5, 0.72), (0.42, 0.36), (0.3, 0.44), (0.2, 0.3), (0.08, 0.42), (-0.04, 0.3),
                (-0.16, 0.43), (-0.28, 0.31), (-0.4, 0.4), (-0.5, 0.72)]
    if style in ("long", "bob", "braid", "twintails"):
        tips[0] = (0.52, 0.95 if style != "bob" else 0.85)
        tips[-1] = (-0.52, 0.95 if style != "bob" else 0.85)
    return top + tips


def _draw_back_hair(pen: _Pen, look: CharacterLook) -> None:
    back = shade(look.hair, 0.82)
    style = look.hair_style
    if style == "long":
        pen.poly([(-0.5, 0.3), (-0.62, 1.4), (-0.66, 2.35), (-0.3, 2.2), (0.0, 2.3), (0.3, 2.2),
                  (0.66, 2.35), (0.62, 1.4), (0.5, 0.3)], back)
    elif style == "bob":
        pen.poly([(-0.54, 0.35), (-0.6, 0.95), (-0.3, 1.02), (0.3, 1.02), (0.6, 0.95), (0.54, 0.35)], back)
    elif style == "ponytail":
        pen.poly(_bezier((0.25, 0.08), (1.0, 0.2), (0.72, 1.9), 10) + _bezier((0.55, 1.7), (0.7, 0.5), (0.2, 0.3), 8),
                 back)
    elif style == "twintails":
        for side in (-1, 1):
            pen.poly([(side * x, y) for x, y in
                      _bezier((0.4, 0.12), (1.05, 0.6), (0.78, 2.3), 10) + _bezier((0.55, 2.0), (0.65, 0.8), (0.36, 0.35), 8)],
                     back)
            pen.ellipse(side * 0.5 - 0.07, 0.12, side * 0.5 + 0.07, 0.26, look.accent, shade(look.accent, 0.45))
    elif style == "braid":
        for i in range(6):
            y = 0.95 + i * 0.2
            pen.ellipse(0.34 - 0.11, y - 0.11, 0.34 + 0.11, y + 0.11, back, shade(back, 0.45))
        pen.ellipse(0.27, 2.1, 0.41, 2.2, look.accent, shade(look.accent, 0.45))
    pen.ellipse(-0.5, -0.04, 0.5, 0.86, back, shade(back, 0.45))


def _pose_kind(pose: str) -> str:
    """The few arm poses the figure can show: raised (wave, cheer), pointing, crossed, or down."""
    words = _words(pose)
    if words & {"wave", "waving", "waves", "raise", "raised", "raising", "cheer", "cheering", "salute"}:
        return "raised"
    if words & {"point", "pointing", "points", "reach", "reaching"}:
        return "pointing"
    if words & {"crossed", "folded", "cross", "fold"}:
        return "crossed"
    return "down"


_LONG_GARMENTS = ("kimono", "robe")
_SHIRT_COLLAR = ("shirt", "suit", "coat", "jacket")


def _draw_body(pen: _Pen, look: CharacterLook, full_body: bool, pose: str = "down") -> None:
    """Legs, arms, torso and clothes, in the garment the look tags name (a kimono wraps and is tied
    with an obi, a robe hangs to the ankles, armour has plates, a hoodie a hood...)."""
    garment = look.garment
    outfit, outfit_dark = look.outfit, shade(look.outfit, 0.78)
    long_robe = garment in _LONG_GARMENTS
    if full_body:
        pen.ellipse(-0.7, 5.86, 0.7, 6.08, (0, 0, 0, 70))
        if long_robe:
            for side in (-1, 1):       # tabi socks and sandals under the hem
                pen.ellipse(side * 0.18 - 0.15, 5.6, side * 0.18 + 0.15, 5.84, _WHITE)
                pen.poly([(side * 0.18 - 0.17, 5.8), (side * 0.18 + 0.17, 5.8), (side * 0.18 + 0.16, 5.88),
                          (side * 0.18 - 0.16, 5.88)], (92, 66, 48))
        else:
            if look.skirt:
                for side in (-1, 1):
                    pen.poly([(side * 0.08, 3.6), (side * 0.1, 5.65), (side * 0.28, 5.65), (side * 0.32, 3.6)],
                             look.skin)
                    pen.poly([(side * 0.09, 4.85), (side * 0.1, 5.7), (side * 0.28, 5.7), (side * 0.3, 4.85)],
                             mix(look.legs, _WHITE, 0.2))
            else:
                legs = look.outfit if garment == "armor" else look.legs
                for side in (-1, 1):
                    pen.poly([(side * 0.02, 3.25), (side * 0.08, 5.72), (side * 0.32, 5.72), (side * 0.47, 3.25)],
                             legs)
                    if garment == "armor":      # greaves and knee cops
                        pen.ellipse(side * 0.2 - 0.12, 4.3, side * 0.2 + 0.12, 4.55, mix(legs, _WHITE, 0.25))
            for side in (-1, 1):
                pen.ellipse(side * 0.2 - 0.17, 5.62, side * 0.2 + 0.17, 5.86, (52, 44, 52))
    if garment == "hoodie":             # the hood lies on the shoulders behind the neck
        pen.ellipse(-0.5, 0.78, 0.5, 1.36, outfit_dark)
    # arms behind the torso edge; the figure's left arm (screen right) follows the pose
    for side in (-1, 1):
        if side == 1 and pose == "raised":
            pen.poly([(0.5, 1.3), (0.66, 1.36), (0.98, 0.9), (0.98, 0.36), (0.8, 0.36), (0.8, 0.86), (0.5, 1.62)],
                     outfit_dark)
            pen.ellipse(0.8, 0.16, 0.99, 0.42, look.skin)
            continue
        if side == 1 and pose == "pointing":
            pen.poly([(0.5, 1.3), (0.62, 1.32), (0.98, 1.56), (0.98, 1.74), (0.6, 1.62), (0.46, 1.62)], outfit_dark)
            pen.ellipse(0.9, 1.52, 1.04, 1.76, look.skin)
            continue
        if pose == "crossed":  # upper arms only; the forearms cross in front of the torso below
            pen.poly([(side * x, y) for x, y in [(0.5, 1.3), (0.66, 1.4), (0.74, 2.3), (0.5, 2.3), (0.45, 1.6)]],
                     outfit_dark)
            continue
        if long_robe:                   # wide hanging sleeves, hands just showing
            pen.ellipse(side * 0.6 - 0.09, 2.62, side * 0.6 + 0.09, 2.86, look.skin)
            pen.poly([(side * x, y) for x, y in
                      [(0.5, 1.25), (0.72, 1.36), (0.96, 2.2), (0.94, 2.72), (0.5, 2.72), (0.44, 1.7)]],
                     outfit_dark)
            continue
        pen.poly([(side * x, y) for x, y in
                  [(0.5, 1.3), (0.66, 1.4), (0.76, 2.25), (0.72, 3.05), (0.55, 3.05), (0.55, 2.3), (0.45, 1.6)]],
                 outfit_dark)
        pen.ellipse(side * 0.635 - 0.095, 3.0, side * 0.635 + 0.095, 3.24, look.skin)
    shoulder = _bezier((0.12, 1.06), (0.6, 1.12), (0.62, 1.5), 6)
    hem = 3.35
    if full_body and long_robe:
        hem = 5.62
    elif full_body and garment == "coat":
        hem = 4.4
    side_line = [(0.46, 2.0), (0.4, 2.72), (0.47, 3.35)] if hem <= 3.35 else \
        [(0.46, 2.0), (0.42, 2.72), (0.46, 3.4), (0.44 if long_robe else 0.5, hem)]
    right = shoulder + side_line
    pen.poly(right + _mirror(right), outfit)
    if pose == "crossed":
        pen.ellipse(0.3, 2.0, 0.48, 2.22, look.skin)
        pen.ellipse(-0.48, 2.06, -0.3, 2.28, look.skin)
        pen.poly([(-0.74, 2.08), (0.36, 2.0), (0.4, 2.24), (-0.7, 2.34)], outfit_dark)
        pen.poly([(0.74, 2.12), (-0.36, 2.06), (-0.4, 2.3), (0.7, 2.38)], shade(look.outfit, 0.7))
    if garment == "dress":              # the skirt flares from the waist
        flare = [(-0.42, 2.62), (-0.8, 4.3 if full_body else 3.7), (0.8, 4.3 if full_body else 3.7), (0.42, 2.62)]
        pen.poly(flare, outfit)
        pen.line([(-0.2, 2.9), (-0.36, 4.1 if full_body else 3.6)], outfit_dark, 0.02)
        pen.line([(0.2, 2.9), (0.36, 4.1 if full_body else 3.6)], outfit_dark, 0.02)
    elif look.skirt and full_body and not long_robe:
        pen.poly([(-0.42, 2.72), (-0.64, 3.78), (0.64, 3.78), (0.42, 2.72)], look.legs)
    # neck, collar, garment details
    pen.poly([(-0.12, 0.8), (-0.12, 1.16), (0.0, 1.26), (0.12, 1.16), (0.12, 0.8)], shade(look.skin, 0.9), outline=False)
    _draw_garment(pen, look, hem)
    collar = garment in _SHIRT_COLLAR or (garment == "uniform" and look.style == "blazer")
    if look.accessory == "tie" and collar:
        pen.poly([(-0.045, 1.3), (-0.07, 1.9), (0.0, 2.0), (0.07, 1.9), (0.045, 1.3)], look.accent)
    elif look.accessory == "ribbon" and garment != "armor":
        y = 1.95 if garment == "uniform" and look.style == "sailor" else 1.34
        pen.poly([(0.0, y), (-0.2, y - 0.12), (-0.2, y + 0.12)], look.accent)
        pen.poly([(0.0, y), (0.2, y - 0.12), (0.2, y + 0.12)], look.accent)
        pen.ellipse(-0.05, y - 0.05, 0.05, y + 0.05, shade(look.accent, 0.85))
    elif look.accessory == "scarf":
        pen.poly([(-0.34, 1.02), (-0.36, 1.24), (0.0, 1.33), (0.36, 1.24), (0.34, 1.02), (0.0, 1.1)], look.accent)
        pen.poly([(0.1, 1.2), (0.3, 1.2), (0.34, 1.95), (0.16, 1.9)], shade(look.accent, 0.85))


def _draw_garment(pen: _Pen, look: CharacterLook, hem: float) -> None:
    """The garment's own marks over the torso: collars, lapels, obi, plates, buttons, pockets."""
    garment, outfit = look.garment, look.outfit
    dark, light = shade(outfit, 0.7), mix(outfit, _WHITE, 0.3)
    if garment in _SHIRT_COLLAR or (garment == "uniform" and look.style == "blazer"):
        pen.poly([(-0.17, 1.07), (0.0, 1.45), (0.17, 1.07)], _WHITE)          # shirt opening
        pen.poly([(-0.12, 1.07), (0.0, 1.28), (0.12, 1.07)], shade(look.skin, 0.9), outline=False)
        if garment != "shirt":                                                # lapels and buttons
            for side in (-1, 1):
                pen.poly([(side * 0.17, 1.07), (side * 0.3, 1.12), (side * 0.2, 1.5), (side * 0.03, 1.75)], dark)
            pen.line([(0.0, 1.75), (0.0, hem - 0.05)], dark, 0.012)
            for y in (2.1, 2.6) if hem <= 3.4 else (2.1, 2.6, 3.1, 3.6):
                pen.ellipse(0.05, y - 0.035, 0.12, y + 0.035, mix(dark, _WHITE, 0.4))
    elif garment in _LONG_GARMENTS:
        collar = mix(outfit, _WHITE, 0.75) if sum(outfit) < 600 else shade(outfit, 0.72)
        if garment == "kimono":   # left over right: the collar bands cross down to the obi
            pen.poly([(0.2, 1.04), (0.3, 1.08), (-0.04, 2.12), (-0.16, 2.1)], collar)
            pen.poly([(-0.2, 1.04), (-0.3, 1.08), (-0.02, 1.62), (0.06, 1.5)], collar)
            pen.line([(-0.1, 2.5), (-0.04, hem - 0.05)], dark, 0.014)
            pen.poly([(-0.47, 2.06), (0.47, 2.06), (0.46, 2.56), (-0.46, 2.56)], look.sash)   # the obi
            pen.line([(-0.46, 2.31), (0.46, 2.31)], look.accent, 0.03)
            pen.poly([(-0.08, 2.22), (0.08, 2.22), (0.12, 2.42), (-0.12, 2.42)], shade(look.sash, 0.8))
        else:                     # an open robe with a corded belt
            pen.poly([(-0.22, 1.04), (0.0, 2.1), (0.22, 1.04), (0.12, 1.04), (0.0, 1.6), (-0.12, 1.04)], collar)
            pen.line([(-0.44, 2.4), (0.44, 2.4)], look.sash, 0.04)
            pen.line([(0.1, 2.4), (0.16, 2.9)], look.sash, 0.025)
            pen.line([(0.0, 2.45), (0.0, hem - 0.05)], dark, 0.014)
    elif garment == "dress":
        pen.ellipse(-0.18, 0.96, 0.18, 1.3, shade(look.skin, 0.95))             # round neckline
        pen.line([(-0.42, 2.62), (0.42, 2.62)], dark, 0.03)
    elif garment == "armor":
        for side in (-1, 1):                                                    # pauldrons
            pen.ellipse(side * 0.62 - 0.24, 1.1, side * 0.62 + 0.24, 1.56, light)
        pen.line([(0.0, 1.3), (0.0, 2.7)], dark, 0.02)
        for y in (1.9, 2.35, 2.75):
            pen.line([(-0.4, y), (0.4, y)], dark, 0.018)
        for k, y in enumerate((3.0, 3.3)):                                      # tassets
            pen.poly([(-0.48 - 0.04 * k, y), (0.48 + 0.04 * k, y), (0.52 + 0.04 * k, y + 0.3),
                      (-0.52 - 0.04 * k, y + 0.3)], shade(outfit, 0.9 - 0.08 * k))
    elif garment == "uniform" and look.style == "sailor":
        flap = mix(outfit, _INK, 0.5) if sum(outfit) > 450 else mix(outfit, _WHITE, 0.8)
        pen.poly([(-0.5, 1.1), (-0.22, 1.05), (0.0, 1.95), (0.22, 1.05), (0.5, 1.1), (0.56, 1.62), (0.22, 1.62),
                  (0.0, 2.0), (-0.22, 1.62), (-0.56, 1.62)], flap)
        pen.line([(-0.5, 1.55), (-0.24, 1.55), (0.0, 1.92), (0.24, 1.55), (0.5, 1.55)],
                 _WHITE if flap != _WHITE else dark, 0.02)
    elif garment == "uniform":  # gakuran: standing collar, gold buttons down the front
        pen.poly([(-0.17, 1.0), (0.17, 1.0), (0.19, 1.18), (-0.19, 1.18)], dark)
        pen.line([(0.0, 1.18), (0.0, hem - 0.05)], dark, 0.014)
        for y in (1.4, 1.8, 2.2, 2.6, 3.0):
            pen.ellipse(-0.04, y - 0.04, 0.04, y + 0.04, (222, 184, 70))
    elif garment == "hoodie":
        for side in (-1, 1):                                                    # drawstrings
            pen.line([(side * 0.08, 1.15), (side * 0.1, 1.75)], mix(outfit, _WHITE, 0.7), 0.018)
        pen.poly([(-0.32, 2.55), (0.32, 2.55), (0.38, 3.05), (-0.38, 3.05)], shade(outfit, 0.86))


def _draw_head(pen: _Pen, look: CharacterLook) -> None:
    for side in (-1, 1):
        pen.ellipse(side * 0.45 - 0.07, 0.46, side * 0.45 + 0.07, 0.66, look.skin)
    pen.poly(_head_outline(), look.skin)
    pen.poly(_bangs_outline(look.hair_style), look.hair)
    shine = mix(look.hair, _WHITE, 0.35)
    pen.poly(_bezier((-0.3, 0.15), (0.0, 0.05), (0.3, 0.15), 6) + _bezier((0.26, 0.2), (0.0, 0.12), (-0.26, 0.2), 6),
             shine, outline=False)
    if look.accessory == "headband":
        pen.line(_bezier((-0.47, 0.35), (0.0, -0.25), (0.47, 0.35), 10), look.accent, 0.07)
    elif look.accessory == "hairclip":
        pen.poly([(0.26, 0.27), (0.42, 0.2), (0.44, 0.26), (0.28, 0.33)], look.accent)
    if look.hat == "hat":
        pen.ellipse(-0.78, 0.02, 0.78, 0.28, look.accent)
        pen.poly([(-0.44, 0.15), (-0.4, -0.32), (0.4, -0.32), (0.44, 0.15)], look.accent)
        pen.poly([(-0.43, 0.02), (-0.42, -0.06), (0.42, -0.06), (0.43, 0.02)], shade(look.accent, 0.7))
    elif look.hat == "cap":
        pen.poly(_bezier((-0.5, 0.22), (0.0, -0.42), (0.5, 0.22), 10), look.accent)
        pen.poly([(-0.1, 0.2), (0.72, 0.18), (0.66, 0.3), (-0.1, 0.3)], shade(look.accent, 0.75))


def _draw_face(pen: _Pen, look: CharacterLook, expression: str, state: str) -> None:
    """Brows, eyes, mouth and cheek marks: the only strokes that blink / mouth variants change."""
    brows, lids, pupil, mouth, extra = _FACE.get(expression, _FACE["neutral"])
    ink = _INK
    for side in (-1, 1):
        inner, outer = brows
        if expression == "smirk" and side < 0:
            inner, outer = 0.0, 0.0
        pen.line([(side * 0.09, 0.43 + inner), (side * 0.2, 0.4 + (inner + outer) / 2 - 0.01),
                  (side * 0.3, 0.43 + outer)], shade(look.hair, 0.55), 0.028)
    closed = state == "eyes_closed" or (expression == "laughing" and state != "eyes_closed")
    for side in (-1, 1):
        cx, cy = side * 0.19, 0.6
        if closed:
            if expression == "laughing" and state != "eyes_closed":
                pen.line([(cx - 0.09, cy + 0.03), (cx, cy - 0.04), (cx + 0.09, cy + 0.03)], ink, 0.026)
            else:
                pen.line([(cx - 0.1, cy + 0.01), (cx - 0.04, cy + 0.045), (cx + 0.04, cy + 0.045),
                          (cx + 0.1, cy + 0.01)], ink, 0.026)
            continue
        pen.ellipse(cx - 0.095, cy - 0.095, cx + 0.095, cy + 0.09, _WHITE)
        ry = 0.085 * (0.8 + 0.2 * pupil)
        pen.ellipse(cx - 0.065 * pupil, cy - ry, cx + 0.065 * pupil, cy + 0.085, look.eyes, shade(look.eyes, 0.5))
        pen.ellipse(cx - 0.034 * pupil, cy - 0.03, cx + 0.034 * pupil, cy + 0.05, shade(look.eyes, 0.35))
        pen.ellipse(cx - 0.045 * side - 0.022, cy - 0.06, cx - 0.045 * side + 0.022, cy - 0.016, _WHITE)
        inner_cover, outer_cover = lids
        x_in, x_out = cx - side * 0.105, cx + side * 0.105
        top = cy - 0.1
        if inner_cover or outer_cover:
            pen.poly([(x_in, top - 0.02), (x_in, top + 0.19 * inner_cover), (x_out, top + 0.19 * outer_cover),
                      (x_out, top - 0.02)], look.skin, outline=False)
        pen.line([(x_in, top + 0.19 * inner_cover + 0.01), (x_out, top + 0.19 * outer_cover),
                  (x_out + side * 0.03, top + 0.19 * outer_cover - 0.02)], ink, 0.03)
    pen.line([(0.0, 0.72), (-0.015, 0.76)], shade(look.skin, 0.7), 0.014)

    red, dark = (196, 70, 80), (110, 36, 48)
    if state.startswith("mouth_") and state != "mouth_open":
        _draw_mouth_shape(pen, state[len("mouth_"):], red, dark)
    elif state == "mouth_open":
        if mouth in ("smile", "laugh"):
            pen.poly(_bezier((-0.12, 0.82), (0.0, 0.98), (0.12, 0.82), 8), dark)
            pen.ellipse(-0.06, 0.88, 0.06, 0.93, red, None)
        elif mouth in ("o",):
            pen.ellipse(-0.055, 0.8, 0.055, 0.95, dark, ink)
        elif mouth in ("frown", "wail"):
            pen.poly(_bezier((-0.09, 0.9), (0.0, 0.76), (0.09, 0.9), 8), dark)
        else:
            pen.ellipse(-0.07, 0.81, 0.07, 0.9, dark, ink)
            pen.ellipse(-0.04, 0.86, 0.04, 0.9, red, None)
    elif mouth == "line":
        pen.line([(-0.05, 0.85), (0.05, 0.85)], ink, 0.018)
    elif mouth == "smile":
        pen.line(_bezier((-0.09, 0.83), (0.0, 0.9), (0.09, 0.83), 8), ink, 0.02)
    elif mouth == "laugh":
        pen.poly(_bezier((-0.13, 0.81), (0.0, 1.0), (0.13, 0.81), 8), dark)
        pen.ellipse(-0.07, 0.88, 0.07, 0.95, red, None)
    elif mouth == "frown":
        pen.line(_bezier((-0.07, 0.88), (0.0, 0.82), (0.07, 0.88), 8), ink, 0.02)
    elif mouth == "wail":
        pen.poly([(-0.1, 0.9), (-0.05, 0.81), (0.05, 0.81), (0.1, 0.9)], dark)
    elif mouth == "teeth":
        pen.poly([(-0.09, 0.82), (0.09, 0.82), (0.07, 0.89), (-0.07, 0.89)], _WHITE)
        pen.line([(-0.09, 0.855), (0.09, 0.855)], ink, 0.01)
    elif mouth == "o":
        pen.ellipse(-0.035, 0.81, 0.035, 0.9, dark, ink)
    elif mouth == "wavy":
        pen.line([(-0.08, 0.86), (-0.04, 0.83), (0.0, 0.86), (0.04, 0.83), (0.08, 0.86)], ink, 0.016)
    elif mouth == "firm":
        pen.line([(-0.08, 0.86), (-0.06, 0.85), (0.06, 0.85), (0.08, 0.86)], ink, 0.022)
    elif mouth == "smirk":
        pen.line(_bezier((-0.07, 0.86), (0.02, 0.87), (0.09, 0.81), 8), ink, 0.02)
    elif mouth == "side":
        pen.line([(0.0, 0.86), (0.08, 0.85)], ink, 0.018)

    if extra == "blush":
        for side in (-1, 1):
            pen.ellipse(side * 0.27 - 0.08, 0.71, side * 0.27 + 0.08, 0.77, mix(look.skin, (240, 110, 130), 0.45))
    elif extra == "tears":
        tear = (150, 210, 250)
        for side in (-1, 1):
            pen.poly([(side * 0.14, 0.66), (side * 0.24, 0.66), (side * 0.22, 0.96), (side * 0.16, 0.96)], tear,
                     outline=False)
    elif extra == "sweat":
        pen.poly([(0.34, 0.36), (0.3, 0.46), (0.34, 0.49), (0.38, 0.46)], (170, 220, 250))
    if look.glasses:
        for side in (-1, 1):
            cx = side * 0.19
            pen.ellipse(cx - 0.13, 0.49, cx + 0.13, 0.7, None, (60, 60, 70), 0.018)
        pen.line([(-0.06, 0.57), (0.06, 0.57)], (60, 60, 70), 0.018)


#: Lip-sync mouth shapes drawn as variants (tools.lipsync.SHAPES without "rest", the plain face).
MOUTH_SHAPES = ("mbp", "fv", "open_small", "open_wide", "round", "ei")


def _draw_mouth_shape(pen: _Pen, shape: str, red: tuple[int, int, int], dark: tuple[int, int, int]) -> None:
    """One mouth of the lip-sync chart, at the face's mouth (the same for every expression: while a
    line is spoken the mouth follows the phonemes, the eyes and brows keep the expression)."""
    if shape == "mbp":          # lips pressed together
        pen.line([(-0.07, 0.86), (-0.05, 0.85), (0.05, 0.85), (0.07, 0.86)], dark, 0.03)
    elif shape == "fv":         # upper teeth on the lower lip
        pen.poly([(-0.06, 0.83), (0.06, 0.83), (0.055, 0.865), (-0.055, 0.865)], _WHITE)
        pen.line([(-0.065, 0.875), (0.065, 0.875)], dark, 0.02)
    elif shape == "open_small":
        pen.ellipse(-0.05, 0.83, 0.05, 0.89, dark, _INK)
    elif shape == "open_wide":
        pen.ellipse(-0.08, 0.8, 0.08, 0.96, dark, _INK)
        pen.ellipse(-0.045, 0.9, 0.045, 0.95, red, None)
    elif shape == "round":
        pen.ellipse(-0.035, 0.81, 0.035, 0.91, dark, _INK)
    elif shape == "ei":         # spread lips, teeth showing
        pen.ellipse(-0.095, 0.83, 0.095, 0.885, dark, _INK)
        pen.poly([(-0.075, 0.835), (0.075, 0.835), (0.07, 0.852), (-0.07, 0.852)], _WHITE, outline=False)


@dataclass
class _Figure:
    placement: Placement
    base: Image.Image                 # layer sprite with the expression's face
    eyes_closed: Image.Image
    mouth_open: Image.Image
    mouths: dict[str, Image.Image] = field(default_factory=dict)   # MOUTH_SHAPES -> sprite


def _render_figure(look: CharacterLook, expression: str, placement: Placement, full_body: bool,
                   fade_bottom: int, pose: str = "down", mouths: bool = False) -> _Figure:
    """Draw a figure once (body, head, hair) on a small canvas, then only the face patch three
    times (normal, eyes closed, mouth open, and with ``mouths`` each lip-sync shape), so variants
    differ in the face box alone."""
    x0, y0, x1, y1 = placement.box
    width, height = x1 - x0, y1 - y0
    ss = 2 if width * height <= 420_000 else 1     # supersample small figures, where jaggies show
    canvas = Image.new("RGBA", (width * ss, height * ss), _INK + (0,))
    origin = ((placement.center_x - x0) * ss, (placement.head_top - y0) * ss)
    pen = _Pen(canvas, origin, placement.unit * ss)
    _draw_back_hair(pen, look)
    pen.sx = look.build
    _draw_body(pen, look, full_body, pose)
    pen.sx = 1.0
    _draw_head(pen, look)
    base = canvas.reduce(ss) if ss > 1 else canvas.copy()

    fx0, fy0, fx1, fy1 = (placement.face[0] - x0, placement.face[1] - y0,
                          placement.face[2] - x0, placement.face[3] - y0)
    if fade_bottom > 0:
        start = max(height - fade_bottom, fy1)
        if start < height:
            alpha = np.asarray(base.getchannel("A"), dtype=np.float32).copy()
            ramp = np.linspace(1.0, 0.0, height - start + 1, dtype=np.float32)[1:]
            alpha[start:] *= ramp[:, None]
            base.putalpha(Image.fromarray(alpha.round().astype(np.uint8)))

    states: dict[str, Image.Image] = {}
    for state in ("normal", "eyes_closed", "mouth_open", *(f"mouth_{m}" for m in MOUTH_SHAPES if mouths)):
        patch = canvas.crop((fx0 * ss, fy0 * ss, fx1 * ss, fy1 * ss))
        face_pen = _Pen(patch, (origin[0] - fx0 * ss, origin[1] - fy0 * ss), placement.unit * ss)
        _draw_face(face_pen, look, expression, state)
        image = base.copy()
        image.paste(patch.reduce(ss) if ss > 1 else patch, (fx0, fy0))
        states[state] = image
    return _Figure(placement, states["normal"], states["eyes_closed"], states["mouth_open"],
                   {m: states[f"mouth_{m}"] for m in MOUTH_SHAPES if mouths})
