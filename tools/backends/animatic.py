"""The offline default painter: readable animatic/storyboard panels drawn with Pillow.

This is what a creator without a GPU or a diffusion checkpoint gets, so it has to carry the shot:
a backdrop that hints the place and its light, each character as a consistent cel-shaded figure
(colours and hair from the bible's look tags, face showing the expression), the speaker marked,
the camera move drawn as a guide, and the 9:16 safe area respected. It also hands the motion step
separate layers (backdrop, one per character, overlay) and blink / mouth-open variants of each
character layer, so limited animation needs no model either.

Everything is deterministic: a panel is a function of its request. The place's layout comes from
the location alone (so a location looks the same across shots), small details such as rain
streaks from the location plus ``request.seed``, and a character's look from its id and look tags.
"""
from __future__ import annotations

import colorsys
import hashlib
import itertools
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from memory.errors import InputError
from tools.backends._draw import (
    RGB,
    find_color_word,
    find_font,
    font_for,
    mix,
    parse_color,
    shade,
    wrap_text,
    write_layer_pngs,
    write_png,
)
from tools.backends.protocols import CAMERA_MOVES, FRAMINGS, CharacterInShot, PanelRequest, PanelResult

__all__ = [
    "MODEL", "SAFE_BOTTOM", "SAFE_SIDE", "SAFE_TOP", "AnimaticPainter", "CharacterLook", "Placement",
    "canonical_expression", "character_look", "find_font", "plan_figures", "safe_rect",
]

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
_OUTFIT_WORDS = {"uniform", "blazer", "jacket", "coat", "dress", "shirt", "hoodie", "sweater", "kimono",
                 "suit", "cardigan", "top", "outfit", "clothes", "robe", "armor", "armour", "vest",
                 "blouse", "parka", "tshirt", "jersey", "yukata", "apron", "sailor", "gakuran"}
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
    if words & {"skirt", "dress", "sailor"}:
        skirt = True
    elif words & {"pants", "jeans", "trousers", "gakuran", "suit"}:
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
            hair = color
        elif tag_words & _EYE_WORDS:
            eyes = color
        elif tag_words & _LEG_WORDS:
            legs = color
        elif tag_words & set(_ACCESSORY_WORDS) or tag_words & {"hat", "cap", "beret"}:
            accent = color
        elif tag_words & _OUTFIT_WORDS:
            outfit = color
        elif "skin" in tag_words:
            skin = color
    if accessory is None and rng.random() < 0.5:
        accessory = rng.choice(("ribbon", "tie", "scarf", "hairclip"))
    if legs is None:
        legs = shade(outfit, 0.7) if not skirt else mix(outfit, _INK, 0.35)
    return CharacterLook(hair=hair, eyes=eyes, skin=skin, outfit=outfit, legs=legs, accent=accent,
                         hair_style=hair_style, skirt=skirt, accessory=accessory, hat=hat, glasses=glasses)


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
    for character in request.characters:
        if character.id not in shown:
            placements.append(Placement(character.id, False, 0.0, 0.0, 0.0, (0, 0, 0, 0), (0, 0, 0, 0), (0.0, 0.0)))
            continue
        center_x = left + safe_w * (slot + 0.5) / count
        head_top = head_tops[slot]
        slot += 1
        box = (
            max(left, math.floor(center_x + _FIG_LEFT * unit)),
            max(top, math.floor(head_top + _FIG_TOP * unit)),
            min(right, math.ceil(center_x + _FIG_RIGHT * unit)),
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

    def pt(self, x: float, y: float) -> tuple[float, float]:
        return (self.ox + x * self.unit, self.oy + y * self.unit)

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


def _draw_body(pen: _Pen, look: CharacterLook, full_body: bool, pose: str = "down") -> None:
    outfit, outfit_dark = look.outfit, shade(look.outfit, 0.78)
    if full_body:
        pen.ellipse(-0.7, 5.86, 0.7, 6.08, (0, 0, 0, 70))
        if look.skirt:
            for side in (-1, 1):
                pen.poly([(side * 0.08, 3.6), (side * 0.1, 5.65), (side * 0.28, 5.65), (side * 0.32, 3.6)], look.skin)
                pen.poly([(side * 0.09, 4.85), (side * 0.1, 5.7), (side * 0.28, 5.7), (side * 0.3, 4.85)],
                         mix(look.legs, _WHITE, 0.2))
        else:
            for side in (-1, 1):
                pen.poly([(side * 0.02, 3.25), (side * 0.08, 5.72), (side * 0.32, 5.72), (side * 0.47, 3.25)], look.legs)
        for side in (-1, 1):
            pen.ellipse(side * 0.2 - 0.17, 5.62, side * 0.2 + 0.17, 5.86, (52, 44, 52))
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
        pen.poly([(side * x, y) for x, y in
                  [(0.5, 1.3), (0.66, 1.4), (0.76, 2.25), (0.72, 3.05), (0.55, 3.05), (0.55, 2.3), (0.45, 1.6)]],
                 outfit_dark)
        pen.ellipse(side * 0.635 - 0.095, 3.0, side * 0.635 + 0.095, 3.24, look.skin)
    shoulder = _bezier((0.12, 1.06), (0.6, 1.12), (0.62, 1.5), 6)
    side_line = [(0.46, 2.0), (0.4, 2.72), (0.47, 3.35)]
    right = shoulder + side_line
    pen.poly(right + _mirror(right), outfit)
    if pose == "crossed":
        pen.ellipse(0.3, 2.0, 0.48, 2.22, look.skin)
        pen.ellipse(-0.48, 2.06, -0.3, 2.28, look.skin)
        pen.poly([(-0.74, 2.08), (0.36, 2.0), (0.4, 2.24), (-0.7, 2.34)], outfit_dark)
        pen.poly([(0.74, 2.12), (-0.36, 2.06), (-0.4, 2.3), (0.7, 2.38)], shade(look.outfit, 0.7))
    if look.skirt and full_body:
        pen.poly([(-0.42, 2.72), (-0.64, 3.78), (0.64, 3.78), (0.42, 2.72)], look.legs)
    # neck, shirt opening, accessory
    pen.poly([(-0.12, 0.8), (-0.12, 1.16), (0.0, 1.26), (0.12, 1.16), (0.12, 0.8)], shade(look.skin, 0.9), outline=False)
    pen.poly([(-0.17, 1.07), (0.0, 1.45), (0.17, 1.07)], _WHITE)
    pen.poly([(-0.12, 1.07), (0.0, 1.28), (0.12, 1.07)], shade(look.skin, 0.9), outline=False)
    if look.accessory == "tie":
        pen.poly([(-0.045, 1.3), (-0.07, 1.9), (0.0, 2.0), (0.07, 1.9), (0.045, 1.3)], look.accent)
    elif look.accessory == "ribbon":
        pen.poly([(0.0, 1.34), (-0.2, 1.22), (-0.2, 1.46)], look.accent)
        pen.poly([(0.0, 1.34), (0.2, 1.22), (0.2, 1.46)], look.accent)
        pen.ellipse(-0.05, 1.29, 0.05, 1.39, shade(look.accent, 0.85))
    elif look.accessory == "scarf":
        pen.poly([(-0.34, 1.02), (-0.36, 1.24), (0.0, 1.33), (0.36, 1.24), (0.34, 1.02), (0.0, 1.1)], look.accent)
        pen.poly([(0.1, 1.2), (0.3, 1.2), (0.34, 1.95), (0.16, 1.9)], shade(look.accent, 0.85))


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
    if state == "mouth_open":
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


@dataclass
class _Figure:
    placement: Placement
    base: Image.Image                 # layer sprite with the expression's face
    eyes_closed: Image.Image
    mouth_open: Image.Image


def _render_figure(look: CharacterLook, expression: str, placement: Placement, full_body: bool,
                   fade_bottom: int, pose: str = "down") -> _Figure:
    """Draw a figure once (body, head, hair) on a small canvas, then only the face patch three
    times (normal, eyes closed, mouth open), so variants differ in the face box alone."""
    x0, y0, x1, y1 = placement.box
    width, height = x1 - x0, y1 - y0
    ss = 2 if width * height <= 420_000 else 1     # supersample small figures, where jaggies show
    canvas = Image.new("RGBA", (width * ss, height * ss), _INK + (0,))
    origin = ((placement.center_x - x0) * ss, (placement.head_top - y0) * ss)
    pen = _Pen(canvas, origin, placement.unit * ss)
    _draw_back_hair(pen, look)
    _draw_body(pen, look, full_body, pose)
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
    for state in ("normal", "eyes_closed", "mouth_open"):
        patch = canvas.crop((fx0 * ss, fy0 * ss, fx1 * ss, fy1 * ss))
        face_pen = _Pen(patch, (origin[0] - fx0 * ss, origin[1] - fy0 * ss), placement.unit * ss)
        _draw_face(face_pen, look, expression, state)
        image = base.copy()
        image.paste(patch.reduce(ss) if ss > 1 else patch, (fx0, fy0))
        states[state] = image
    return _Figure(placement, states["normal"], states["eyes_closed"], states["mouth_open"])


# --------------------------------------------------------------------------- backdrop


@dataclass(frozen=True)
class _Palette:
    sky_top: RGB
    sky_low: RGB
    ground: RGB
    accent: RGB


def _palette(request: PanelRequest) -> _Palette:
    """The style's palette in scene roles (sky top, horizon, ground, accent), lit by the shot's
    lighting and mood; derived from the location name when the style gives none."""
    colors = [parse_color(value) for value in request.palette if value.strip()]
    rng = random.Random(_digest("palette", request.location_name, request.location_tags))
    hue = rng.uniform(0, 360)
    derived = [_hls(hue, 0.62, 0.45), _hls(hue + 25, 0.84, 0.55), _hls(hue + 120, 0.42, 0.22),
               _hls(hue + 180, 0.55, 0.6)]
    if colors:
        derived[0] = colors[0]
        derived[1] = colors[1] if len(colors) > 1 else mix(colors[0], _WHITE, 0.5)
        derived[2] = colors[2] if len(colors) > 2 else shade(mix(colors[0], (110, 120, 90), 0.5), 0.75)
        derived[3] = colors[3] if len(colors) > 3 else _hls(hue + 180, 0.55, 0.6)
    sky_top, sky_low, ground, accent = derived
    light = _words(request.lighting, request.mood, request.location_name, *request.location_tags)
    if light & {"sunset", "dusk", "golden", "twilight", "evening"}:
        sky_top, sky_low = mix(sky_top, (120, 70, 140), 0.6), mix(sky_low, (255, 150, 90), 0.65)
        ground = mix(ground, (150, 80, 70), 0.3)
    if light & {"night", "midnight", "dark", "moonlit", "moonlight"}:
        sky_top, sky_low = mix(shade(sky_top, 0.3), (14, 18, 50), 0.5), mix(shade(sky_low, 0.45), (40, 50, 100), 0.4)
        ground, accent = shade(mix(ground, (30, 40, 80), 0.3), 0.45), shade(accent, 0.8)
    if light & {"warm", "cozy", "candlelight", "lamplight"}:
        sky_top, sky_low, ground = (mix(c, (255, 170, 90), 0.22) for c in (sky_top, sky_low, ground))
    if light & {"cool", "cold", "blue", "rain", "rainy", "storm", "overcast"}:
        sky_top, sky_low, ground = (mix(c, (110, 140, 190), 0.3) for c in (sky_top, sky_low, ground))
    if light & {"sad", "melancholy", "gloomy", "tense", "dramatic", "ominous"}:
        sky_top, sky_low, ground = (mix(shade(c, 0.8), (90, 90, 100), 0.3) for c in (sky_top, sky_low, ground))
    if light & {"bright", "sunny", "cheerful", "happy"}:
        sky_top, sky_low, ground = (mix(c, _WHITE, 0.12) for c in (sky_top, sky_low, ground))
    return _Palette(sky_top, sky_low, ground, accent)


_INTERIOR = {"room", "classroom", "bedroom", "cafe", "office", "kitchen", "hall", "hallway", "corridor",
             "library", "shop", "store", "apartment", "house", "inside", "indoor", "indoors", "interior",
             "train", "bar", "restaurant", "gym", "clubroom", "studio", "lab", "hospital", "infirmary"}


def _draw_backdrop(request: PanelRequest, framing: str) -> Image.Image:
    """Paint the place at half size (cheap, and the upscale softens it into a background)."""
    width, height = max(2, request.width // 2), max(2, request.height // 2)
    pal = _palette(request)
    words = _words(request.location_name, *request.location_tags, request.lighting, request.mood)
    layout = random.Random(_digest("layout", request.location_name, request.location_tags))
    detail = random.Random(_digest("detail", request.location_name, request.location_tags, request.seed))
    horizon = round(_horizon(request, framing) * height)
    interior = bool(words & _INTERIOR)

    column = np.empty((height, 1, 3), dtype=np.float32)
    t_sky = np.linspace(0.0, 1.0, max(horizon, 1), dtype=np.float32)[:, None]
    column[:horizon, 0] = np.array(pal.sky_top) * (1 - t_sky) + np.array(pal.sky_low) * t_sky
    far, near = mix(pal.ground, pal.sky_low, 0.25), shade(pal.ground, 1.15)
    t_ground = np.linspace(0.0, 1.0, height - horizon, dtype=np.float32)[:, None]
    column[horizon:, 0] = np.array(far) * (1 - t_ground) + np.array(near) * t_ground
    if interior:
        wall_top, wall_low = mix(pal.sky_low, _WHITE, 0.3), mix(pal.sky_low, pal.ground, 0.25)
        column[:horizon, 0] = np.array(wall_top) * (1 - t_sky) + np.array(wall_low) * t_sky
    image = Image.fromarray(column.round().astype(np.uint8)).resize((width, height), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    night = bool(words & {"night", "midnight", "moonlit", "moonlight"})

    if interior:
        _draw_interior(draw, width, horizon, pal, words, layout, night)
    else:
        if night:
            for _ in range(40):
                x, y = detail.uniform(0, width), detail.uniform(0, horizon * 0.8)
                r = detail.choice((0.6, 0.9, 1.3))
                draw.ellipse((x - r, y - r, x + r, y + r), fill=mix(pal.sky_top, _WHITE, 0.8))
            mx, my, mr = width * (0.25 + 0.5 * layout.random()), horizon * 0.25, width * 0.06
            draw.ellipse((mx - mr * 1.8, my - mr * 1.8, mx + mr * 1.8, my + mr * 1.8), fill=mix(pal.sky_top, _WHITE, 0.12))
            draw.ellipse((mx - mr, my - mr, mx + mr, my + mr), fill=(250, 244, 214))
        else:  # clouds: where they drift is a seed detail, so every candidate differs a little
            cloud = mix(pal.sky_low, _WHITE, 0.45)
            for _ in range(3):
                cx, cy = detail.uniform(0, width), detail.uniform(horizon * 0.08, horizon * 0.55)
                cw = detail.uniform(width * 0.12, width * 0.24)
                for k in range(4):
                    dx, r = (k - 1.5) * cw * 0.3, cw * (0.2 if k in (0, 3) else 0.3)
                    draw.ellipse((cx + dx - r, cy - r * 0.6, cx + dx + r, cy + r * 0.45), fill=cloud)
        _draw_exterior(draw, width, height, horizon, pal, words, layout, night)

    # ground plane with perspective lines towards a centre vanishing point
    line_color = shade(far, 0.82) if not interior else shade(mix(pal.ground, pal.sky_low, 0.2), 0.85)
    vx = width / 2
    for i in range(-8, 9):
        draw.line((vx + i * width * 0.02, horizon, vx + i * width * 0.22, height), fill=line_color, width=1)
    for k in range(1, 9):
        y = horizon + (height - horizon) * (k / 8) ** 2
        draw.line((0, y, width, y), fill=line_color, width=1)
    if interior:
        draw.line((0, horizon, width, horizon), fill=shade(line_color, 0.8), width=2)
        # a patch of window light on the floor; its place is a seed detail
        lx, lw = detail.uniform(width * 0.1, width * 0.6), width * detail.uniform(0.2, 0.35)
        ly = horizon + (height - horizon) * detail.uniform(0.15, 0.45)
        lh = (height - horizon) * 0.18
        glow = mix(near, (255, 240, 200), 0.25 if not night else 0.1)
        draw.polygon([(lx, ly), (lx + lw, ly), (lx + lw * 1.3, ly + lh), (lx + lw * 0.3, ly + lh)], fill=glow)

    if words & {"rain", "rainy", "storm", "downpour", "drizzle"}:
        streak = mix(pal.sky_low, _WHITE, 0.55)
        for _ in range(140):
            x, y = detail.uniform(-width * 0.2, width), detail.uniform(0, height)
            length = detail.uniform(10, 26)
            draw.line((x, y, x + length * 0.25, y + length), fill=streak, width=1)
    if words & {"snow", "snowy", "snowfall", "winter"}:
        for _ in range(120):
            x, y, r = detail.uniform(0, width), detail.uniform(0, height), detail.uniform(0.8, 2.2)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(246, 248, 255))
    if words & {"sakura", "blossom", "blossoms", "petals", "spring"}:
        for _ in range(50):
            x, y, r = detail.uniform(0, width), detail.uniform(0, height), detail.uniform(1.5, 3.0)
            draw.ellipse((x - r, y - r * 0.6, x + r, y + r * 0.6), fill=(250, 190, 210))

    # Depth of field for the closer framings: shrink further before the bilinear upscale.
    soften = {"medium": 2, "close-up": 3, "extreme close-up": 4}.get(framing, 1) if request.kind == "panel" else 1
    if soften > 1:
        image = image.reduce(soften)
    return image.resize((request.width, request.height), Image.Resampling.BILINEAR)


def _draw_interior(draw: ImageDraw.ImageDraw, width: int, horizon: int, pal: _Palette, words: set[str],
                   layout: random.Random, night: bool) -> None:
    frame = shade(mix(pal.sky_low, pal.ground, 0.4), 0.7)
    outside = (30, 40, 80) if night else mix(pal.sky_top, _WHITE, 0.35)
    count = 3 if words & {"classroom", "school", "hallway", "corridor", "train"} else 1 + layout.randrange(2)
    top, bottom = horizon * 0.18, horizon * 0.72
    span = width * 0.86 / count
    for i in range(count):
        x0 = width * 0.07 + i * span + span * 0.08
        x1 = x0 + span * 0.84
        draw.rectangle((x0, top, x1, bottom), fill=outside, outline=frame, width=3)
        draw.line(((x0 + x1) / 2, top, (x0 + x1) / 2, bottom), fill=frame, width=2)
        draw.line((x0, (top + bottom) / 2, x1, (top + bottom) / 2), fill=frame, width=2)
    if words & {"classroom"}:
        draw.rectangle((width * 0.2, horizon * 0.76, width * 0.8, horizon * 0.95), fill=(46, 84, 64),
                       outline=(110, 80, 50), width=3)
    if words & {"cafe", "bar", "restaurant", "kitchen"}:
        draw.rectangle((0, horizon * 0.86, width, horizon * 1.02), fill=shade(pal.accent, 0.7))


def _draw_exterior(draw: ImageDraw.ImageDraw, width: int, height: int, horizon: int, pal: _Palette,
                   words: set[str], layout: random.Random, night: bool) -> None:
    silhouette = mix(pal.sky_low, pal.ground, 0.55)
    if words & {"sea", "ocean", "beach", "shore", "harbor", "harbour", "lake", "river", "coast", "bay"}:
        water = mix(pal.sky_top, (40, 110, 170), 0.5)
        draw.rectangle((0, horizon, width, horizon + (height - horizon) * 0.45), fill=water)
        for k in range(12):
            y = horizon + 3 + k * (height - horizon) * 0.035
            x = layout.uniform(0, width * 0.7)
            draw.line((x, y, x + layout.uniform(20, 80), y), fill=mix(water, _WHITE, 0.4), width=1)
    if words & {"city", "street", "town", "alley", "downtown", "road", "station", "crosswalk", "tokyo",
                "shibuya", "shinjuku", "avenue", "market", "urban", "neighborhood", "neighbourhood"}:
        x = -layout.uniform(0, 20)
        while x < width:
            bw, bh = layout.uniform(width * 0.1, width * 0.22), layout.uniform(horizon * 0.25, horizon * 0.7)
            color = shade(silhouette, layout.uniform(0.8, 1.05))
            draw.rectangle((x, horizon - bh, x + bw, horizon), fill=color)
            lit = (255, 214, 120) if night else mix(color, pal.sky_low, 0.5)
            for wy in np.arange(horizon - bh + 8, horizon - 8, 14):
                for wx in np.arange(x + 6, x + bw - 8, 12):
                    if layout.random() < (0.45 if night else 0.7):
                        draw.rectangle((wx, wy, wx + 5, wy + 7), fill=lit)
            x += bw + layout.uniform(2, 10)
    elif words & {"school", "academy", "campus"}:
        bx0, bx1, by = width * 0.1, width * 0.9, horizon - horizon * 0.45
        draw.rectangle((bx0, by, bx1, horizon), fill=mix(_WHITE, pal.sky_low, 0.3), outline=shade(silhouette, 0.8))
        for row in range(3):
            for col in range(8):
                wx = bx0 + 10 + col * (bx1 - bx0 - 20) / 8
                wy = by + 12 + row * horizon * 0.13
                draw.rectangle((wx, wy, wx + (bx1 - bx0) / 8 - 8, wy + horizon * 0.08), fill=mix(pal.sky_top, _INK, 0.2))
        draw.ellipse((width / 2 - 14, by - 34, width / 2 + 14, by - 6), fill=_WHITE, outline=_INK)
    elif words & {"forest", "woods", "park", "garden", "tree", "trees", "grove", "jungle", "mountain", "trail"}:
        for i in range(14):
            x = layout.uniform(0, width)
            th = layout.uniform(horizon * 0.2, horizon * 0.45)
            trunk = shade(pal.ground, 0.5)
            draw.rectangle((x - 3, horizon - th * 0.4, x + 3, horizon + 4), fill=trunk)
            leaf = shade(mix(pal.ground, (50, 120, 60), 0.5), layout.uniform(0.7, 1.1))
            draw.ellipse((x - th * 0.35, horizon - th, x + th * 0.35, horizon - th * 0.3), fill=leaf)
        for side in (0, 1):
            x = width * (0.02 if side == 0 else 0.98)
            draw.rectangle((x - 10, horizon * 0.3, x + 10, height), fill=shade(pal.ground, 0.35))
            draw.ellipse((x - width * 0.25, -horizon * 0.1, x + width * 0.25, horizon * 0.55),
                         fill=shade(mix(pal.ground, (40, 100, 50), 0.5), 0.6))
    else:
        points = [(0.0, float(horizon))]
        for i in range(9):
            points.append((width * i / 8, horizon - layout.uniform(horizon * 0.04, horizon * 0.16)))
        points.append((float(width), float(horizon)))
        draw.polygon(points, fill=mix(silhouette, pal.sky_low, 0.3))
    if words & {"shrine", "temple", "torii", "jinja"}:
        red, cx = (200, 60, 50) if not night else (130, 40, 40), width / 2
        gw, gh = width * 0.5, horizon * 0.55
        top = horizon - gh
        for side in (-1, 1):
            draw.rectangle((cx + side * gw * 0.36 - 7, top + 12, cx + side * gw * 0.36 + 7, horizon + 10), fill=red)
        draw.polygon([(cx - gw / 2 - 12, top - 6), (cx + gw / 2 + 12, top - 6), (cx + gw / 2, top + 10),
                      (cx - gw / 2, top + 10)], fill=_INK)
        draw.rectangle((cx - gw / 2, top + 8, cx + gw / 2, top + 18), fill=red)
        draw.rectangle((cx - gw * 0.42, top + gh * 0.2, cx + gw * 0.42, top + gh * 0.2 + 9), fill=red)
    if words & {"rooftop", "roof", "balcony"}:
        rail = shade(pal.ground, 0.6)
        y = horizon + (height - horizon) * 0.1
        draw.line((0, y, width, y), fill=rail, width=4)
        draw.line((0, y + 14, width, y + 14), fill=rail, width=2)
        for x in range(0, width, 18):
            draw.line((x, y, x, y + 30), fill=rail, width=2)


def _load_background(path: Path, size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(path) as source:
            image = source.convert("RGB")
    except FileNotFoundError:
        raise InputError(f"background image {path} does not exist; accept a background first or clear it") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"background image {path} cannot be read ({exc}); redraw the background") from None
    return ImageOps.fit(image, size, Image.Resampling.BILINEAR)


# --------------------------------------------------------------------------- overlay


def _pill(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int, fill: tuple[int, ...],
          color: RGB, anchor: str = "mm", bold: bool = True) -> tuple[float, float, float, float]:
    """A rounded label; ``xy`` is placed per ``anchor`` (m = middle, l/r/t/b edges)."""
    font = font_for(text, size, bold=bold)
    text_w = font.getlength(text)
    pad_x, pad_y = size * 0.6, size * 0.35
    box_w, box_h = text_w + 2 * pad_x, size + 2 * pad_y
    x, y = xy
    x0 = x - box_w / 2 if anchor[0] == "m" else (x if anchor[0] == "l" else x - box_w)
    y0 = y - box_h / 2 if anchor[1] == "m" else (y if anchor[1] == "t" else y - box_h)
    box = (x0, y0, x0 + box_w, y0 + box_h)
    draw.rounded_rectangle(box, radius=box_h / 2, fill=fill)
    draw.text((x0 + box_w / 2, y0 + box_h / 2), text, font=font, fill=color, anchor="mm")
    return box


def _fit_text(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float) -> str:
    """``text`` cut to ``width`` pixels with an ellipsis ('' when not even that fits)."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…" if text else ""


def _clamp_box(x0: float, y0: float, w: float, h: float, bounds: tuple[int, int, int, int]) -> tuple[float, float]:
    left, top, right, bottom = bounds
    return (min(max(x0, left), right - w), min(max(y0, top), bottom - h))


def _draw_camera_guide(draw: ImageDraw.ImageDraw, move: str, bounds: tuple[int, int, int, int], size: int) -> None:
    if move == "static":
        return
    left, top, right, bottom = bounds
    color, shadow = (255, 255, 255, 210), (20, 20, 30, 140)
    line = max(2, size // 10)
    cx, cy = (left + right) / 2, (top + bottom) / 2

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        angle = math.atan2(y1 - y0, x1 - x0)
        head = size * 0.7
        tip = [(x1, y1), (x1 - head * math.cos(angle - 0.45), y1 - head * math.sin(angle - 0.45)),
               (x1 - head * math.cos(angle + 0.45), y1 - head * math.sin(angle + 0.45))]
        for offset, fill in ((2, shadow), (0, color)):
            draw.line((x0 + offset, y0 + offset, x1 + offset, y1 + offset), fill=fill, width=line)
            draw.polygon([(px + offset, py + offset) for px, py in tip], fill=fill)

    label = {"push-in": "PUSH IN", "pull-out": "PULL OUT", "pan": "PAN", "tilt": "TILT", "shake": "SHAKE"}[move]
    if move in ("push-in", "pull-out"):
        inset_x, inset_y = (right - left) * 0.14, (bottom - top) * 0.1
        inner = (left + inset_x, top + inset_y, right - inset_x, bottom - inset_y)
        arm = size * 1.6
        corners = (((left, top), (inner[0], inner[1]), (1, 1)), ((right, top), (inner[2], inner[1]), (-1, 1)),
                   ((left, bottom), (inner[0], inner[3]), (1, -1)), ((right, bottom), (inner[2], inner[3]), (-1, -1)))
        for (ox, oy), (ix, iy), (sx, sy) in corners:
            for offset, fill in ((2, shadow), (0, color)):
                draw.line([(ix + offset, iy + sy * arm + offset), (ix + offset, iy + offset),
                           (ix + sx * arm + offset, iy + offset)], fill=fill, width=line, joint="curve")
            ox, oy = ox + sx * size * 0.5, oy + sy * size * 0.5
            if move == "push-in":
                arrow(ox, oy, ix - sx * size * 0.4, iy - sy * size * 0.4)
            else:
                arrow(ix - sx * size * 0.4, iy - sy * size * 0.4, ox, oy)
        text_xy = (cx, inner[3] - size * 0.4)
    elif move == "pan":
        y = bottom - size * 3.2
        arrow(left + size, y, right - size, y)
        text_xy = (cx, y - size * 1.1)
    elif move == "tilt":
        x = right - size * 1.2
        arrow(x, bottom - size * 3, x, top + size * 3)
        text_xy = (x - size * 2.2, cy)
    else:
        y = bottom - size * 3.2
        points = [(left + size + i * (right - left - 2 * size) / 12, y + (size * 0.6 if i % 2 else -size * 0.6))
                  for i in range(13)]
        for offset, fill in ((2, shadow), (0, color)):
            draw.line([(px + offset, py + offset) for px, py in points], fill=fill, width=line, joint="curve")
        text_xy = (cx, y - size * 1.4)
    font = font_for(label, round(size * 0.8), bold=True)
    draw.text(text_xy, label, font=font, fill=color, anchor="mm", stroke_width=max(1, size // 12),
              stroke_fill=(20, 20, 30, 255))


def _draw_overlay(request: PanelRequest, framing: str, move: str, placements: list[Placement],
                  names: dict[str, CharacterInShot]) -> Image.Image:
    """Annotations on a transparent layer: caption strip, name tags, speech bubble, camera guide."""
    width, height = request.width, request.height
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    left, top, right, bottom = safe_rect(width, height)
    right, bottom = right - 1, bottom - 1           # ImageDraw boxes include their last pixel
    safe = (left, top, right, bottom)
    size = max(12, round(height * 0.016))

    strip_h = round(size * 1.9)
    draw.rounded_rectangle((left, top, right, top + strip_h), radius=strip_h // 3, fill=(18, 18, 28, 190))
    tag = "ANIMATIC SKETCH"
    tag_font = font_for(tag, size, bold=True)
    tag_w = tag_font.getlength(tag)
    draw.text((right - size * 0.6, top + strip_h / 2), tag, font=tag_font, fill=(255, 206, 80, 255), anchor="rm")
    info = f"{request.shot_id} · {framing.upper()} · {request.angle}"
    if move != "static":
        info += f" · {move}"
    info_font = font_for(info, size)
    room = right - left - tag_w - size * 2.0
    info = _fit_text(info, info_font, room)
    draw.text((left + size * 0.6, top + strip_h / 2), info, font=info_font, fill=(240, 240, 240, 255), anchor="lm")
    content_top = top + strip_h + size // 2

    _draw_camera_guide(draw, move, (left, content_top, right, bottom), size * 2)

    label_size = round(size * (0.8 if framing == "establishing" else 1.0))
    label_h = label_size * 1.7
    speaker: Placement | None = None
    for placement in placements:
        if not placement.visible:
            continue
        character = names[placement.character_id]
        is_speaker = character.speaking
        feet = placement.box[3]
        y = min(feet + label_size * 0.4, bottom - label_h - size * 0.3)
        name = character.name.strip() or character.id
        text = f"▶ {name}" if is_speaker else name
        text = _fit_text(text, font_for(text, label_size, bold=True), (right - left) / max(1, len(placements)))
        fill = (255, 206, 80, 235) if is_speaker else (18, 18, 28, 200)
        color = _INK if is_speaker else (245, 245, 245)
        font = font_for(text, label_size, bold=True)
        box_w = font.getlength(text) + label_size * 1.2
        x0, _ = _clamp_box(placement.center_x - box_w / 2, y, box_w, label_h, safe)
        _pill(draw, (x0, y), text, label_size, fill, color, anchor="lt")
        if is_speaker and speaker is None:
            speaker = placement
    if request.line_text.strip():
        _draw_bubble(draw, request.line_text.strip(), speaker, (left, content_top, right, bottom - label_h - size),
                     size)
    return overlay


def _draw_bubble(draw: ImageDraw.ImageDraw, text: str, speaker: Placement | None,
                 bounds: tuple[float, float, float, float], size: int) -> None:
    """A speech bubble pointing at the speaker's mouth, or a narration box when nobody speaks."""
    left, top, right, bottom = bounds
    text_size = round(size * 1.35)
    font = font_for(text, text_size)
    max_text_w = (right - left) * 0.78
    lines = wrap_text(text, font, max_text_w)
    if len(lines) > 6:
        lines = [*lines[:5], _fit_text(lines[5] + " " + lines[6], font, max_text_w)]
    line_h = text_size * 1.3
    text_w = max(font.getlength(line) for line in lines)
    pad = text_size * 0.8
    bw, bh = text_w + 2 * pad, len(lines) * line_h + 2 * pad - (line_h - text_size)
    tail = size * 2.2
    fill, edge = (255, 255, 252, 245), (30, 30, 40, 255)
    if speaker is None:
        x0, y0 = _clamp_box((left + right - bw) / 2, top + size * 0.5, bw, bh, (int(left), int(top), int(right), int(bottom)))
        draw.rectangle((x0, y0, x0 + bw, y0 + bh), fill=(250, 244, 222, 240), outline=edge, width=3)
    else:
        unit = speaker.unit
        above_y1 = speaker.head_top - 0.1 * unit - tail
        below_y0 = speaker.head_top + 1.12 * unit + tail
        if above_y1 - bh >= top:
            y0, tail_from, tail_to = above_y1 - bh, above_y1, speaker.head_top - 0.04 * unit
        elif below_y0 + bh <= bottom:
            y0, tail_from, tail_to = below_y0, below_y0, speaker.head_top + 1.02 * unit
        else:
            y0 = bottom - bh
            tail_from, tail_to = y0, max(y0 - tail, speaker.mouth[1] + 0.1 * unit)
            if tail_to >= y0:
                tail_to = y0 - tail
        x0, y0 = _clamp_box(speaker.center_x - bw / 2, y0, bw, bh, (int(left), int(top), int(right), int(bottom)))
        base_x = min(max(speaker.center_x, x0 + bw * 0.2), x0 + bw * 0.8)
        edge_y = y0 + bh if tail_from <= y0 + bh / 2 + bh / 2 and tail_to > y0 + bh / 2 else y0
        if tail_to < y0:
            edge_y = y0
        tip_x = base_x + (speaker.center_x - base_x) * 0.6 + size * 0.6
        tail_poly = [(base_x - size * 0.9, edge_y), (base_x + size * 0.9, edge_y), (tip_x, tail_to)]
        draw.polygon(tail_poly, fill=fill, outline=edge, width=3)
        draw.rounded_rectangle((x0, y0, x0 + bw, y0 + bh), radius=min(bh / 2, size * 1.6), fill=fill, outline=edge,
                               width=3)
        draw.line((base_x - size * 0.9 + 3, edge_y, base_x + size * 0.9 - 3, edge_y), fill=fill, width=4)
    for i, line in enumerate(lines):
        draw.text((x0 + bw / 2, y0 + pad + i * line_h), line, font=font, fill=(24, 24, 32, 255), anchor="mt")


# --------------------------------------------------------------------------- painter


class AnimaticPainter:
    """Draws storyboard panels on the CPU in about a tenth of a second; no model, no network.

    Satisfies ``PanelPainter``. Output names derive from shot id and seed, so a redo with a new
    seed writes new files beside the old ones instead of overwriting an approved panel.
    """

    name = "animatic"

    def paint(self, request: PanelRequest, out_dir: Path) -> PanelResult:
        """Draw ``request`` into ``out_dir``: the panel, its layers and blink/mouth variants."""
        _validate(request)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{_slug(request.shot_id, 'shot id')}-s{request.seed}"
        if request.kind == "character_sheet":
            return _paint_sheet(request, out_dir, stem)
        framing = _canonical_framing(request.framing)
        move = _canonical_move(request.camera_move)
        size = (request.width, request.height)

        if request.background_image is not None:
            backdrop = _load_background(Path(request.background_image), size)
        else:
            backdrop = _draw_backdrop(request, framing)
        layers: dict[str, Path] = {"backdrop": write_png(out_dir / f"{stem}.backdrop.png", backdrop)}
        panel = backdrop.convert("RGBA")

        if request.kind == "background":
            overlay = Image.new("RGBA", size, (0, 0, 0, 0))
            left, _, _, bottom = safe_rect(*size)
            label = request.location_name or "location"
            _pill(ImageDraw.Draw(overlay), (left, bottom - request.height * 0.01), label,
                  max(12, round(request.height * 0.02)), (18, 18, 28, 200), (245, 245, 245), anchor="lb")
            _composite_overlay(panel, overlay)
            layers["overlay"] = write_png(out_dir / f"{stem}.overlay.png", overlay)
            image = write_png(out_dir / f"{stem}.png", panel.convert("RGB"))
            return PanelResult(image=image, seed=request.seed, model=MODEL, layers=layers)

        variants: dict[str, Path] = {}
        placements = plan_figures(request)
        full_body = framing in ("establishing", "wide")
        fade = 0 if full_body else round(request.height * 0.03)
        for character, placement in zip(request.characters, placements):
            key = f"char:{character.id}"
            char_stem = f"{stem}.char-{_slug(character.id, 'character id')}"
            paths = (out_dir / f"{char_stem}.png", out_dir / f"{char_stem}.eyes_closed.png",
                     out_dir / f"{char_stem}.mouth_open.png")
            layers[key] = paths[0]
            variants[f"{key}:eyes_closed"], variants[f"{key}:mouth_open"] = paths[1], paths[2]
            if not placement.visible:  # off screen in this framing: transparent layers keep the contract
                empty = Image.new("RGBA", (0, 0))
                write_layer_pngs([(path, empty) for path in paths], (0, 0), size)
                continue
            figure = _render_figure(character_look(character), canonical_expression(character.expression),
                                    placement, full_body, fade, _pose_kind(character.pose))
            offset = placement.box[:2]
            panel.alpha_composite(figure.base, dest=offset)
            face_rows = (placement.face[1] - offset[1], placement.face[3] - offset[1])
            write_layer_pngs(list(zip(paths, (figure.base, figure.eyes_closed, figure.mouth_open))), offset, size,
                             varying_rows=face_rows)

        names = {c.id: c for c in request.characters}
        overlay = _draw_overlay(request, framing, move, placements, names)
        _composite_overlay(panel, overlay)
        layers["overlay"] = write_png(out_dir / f"{stem}.overlay.png", overlay)
        image = write_png(out_dir / f"{stem}.png", panel.convert("RGB"))
        return PanelResult(image=image, seed=request.seed, model=MODEL, layers=layers, variants=variants)


def _composite_overlay(panel: Image.Image, overlay: Image.Image) -> None:
    """alpha_composite the overlay band by band: its empty rows (most of the frame) are skipped."""
    rows = np.asarray(overlay.getchannel("A")).any(axis=1)
    edges = np.flatnonzero(np.diff(rows.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), len(rows)]
    for start, stop in itertools.pairwise(bounds):
        if not rows[start]:
            continue
        band = overlay.crop((0, start, overlay.width, stop))
        box = band.getbbox()
        if box:
            panel.alpha_composite(band.crop(box), dest=(box[0], start + box[1]))


def _validate(request: PanelRequest) -> None:
    if request.kind not in KINDS:
        raise InputError(f"panel kind {request.kind!r} is unknown; use one of {', '.join(KINDS)}")
    for what, value in (("width", request.width), ("height", request.height)):
        if not isinstance(value, int) or not 64 <= value <= 8192:
            raise InputError(f"panel {what} {value!r} is out of range; use 64 to 8192 pixels (default 1080x1920)")
    if request.kind == "character_sheet" and len(request.characters) != 1:
        raise InputError(
            f"a character sheet needs exactly one character, got {len(request.characters)}; pass the one to draw"
        )
    seen: set[str] = set()
    for character in request.characters:
        if character.id in seen:
            raise InputError(f"character {character.id!r} appears twice in shot {request.shot_id!r}; list it once")
        seen.add(character.id)


# --------------------------------------------------------------------------- character sheet


def _paint_sheet(request: PanelRequest, out_dir: Path, stem: str) -> PanelResult:
    """A reference sheet: full front view, three expressions, colour swatches and the look tags."""
    character = request.characters[0]
    look = character_look(character)
    width, height = request.width, request.height
    sheet = Image.new("RGBA", (width, height), (246, 243, 236, 255))
    draw = ImageDraw.Draw(sheet)
    grid = round(width / 18)
    for x in range(0, width, grid):
        draw.line((x, 0, x, height), fill=(232, 228, 218, 255))
    for y in range(0, height, grid):
        draw.line((0, y, width, y), fill=(232, 228, 218, 255))
    left, top, right, bottom = safe_rect(width, height)
    title_size = max(14, round(height * 0.03))
    title_font = font_for(character.name, title_size, bold=True)
    draw.text((left, top), character.name, font=title_font, fill=_INK + (255,))
    sub = "CHARACTER SHEET · ANIMATIC SKETCH"
    draw.text((left, top + title_size * 1.3), sub, font=font_for(sub, title_size // 2), fill=(120, 110, 120, 255))

    def place(unit: float, cx: float, head_top: float) -> Placement:
        box = (max(0, math.floor(cx + _FIG_LEFT * unit)), max(0, math.floor(head_top + _FIG_TOP * unit)),
               min(width, math.ceil(cx + _FIG_RIGHT * unit)), min(height, math.ceil(head_top + _FIG_FEET * unit)))
        face = (math.floor(cx + _FACE_BOX[0] * unit), math.floor(head_top + _FACE_BOX[1] * unit),
                math.ceil(cx + _FACE_BOX[2] * unit), math.ceil(head_top + _FACE_BOX[3] * unit))
        return Placement(character.id, True, unit, cx, head_top, box, face, (cx, head_top + 0.84 * unit))

    unit = (bottom - top) * 0.12
    front = _render_figure(look, canonical_expression(character.expression), place(unit, width * 0.36, top + height * 0.09),
                           True, 0)
    sheet.alpha_composite(front.base, dest=front.placement.box[:2])
    small = width * 0.11
    label_size = max(10, round(height * 0.013))
    for i, expression in enumerate(("happy", "sad", "surprised")):
        head_top = top + height * 0.09 + i * height * 0.18
        cx = width * 0.78
        placement = place(small, cx, head_top)
        placement = Placement(placement.character_id, True, small, cx, head_top,
                              (placement.box[0], placement.box[1], placement.box[2],
                               min(height, math.ceil(head_top + 1.6 * small))), placement.face, placement.mouth)
        figure = _render_figure(look, expression, placement, False, round(small * 0.25))
        sheet.alpha_composite(figure.base, dest=placement.box[:2])
        draw.text((cx, placement.box[3] + label_size * 0.5), expression.upper(), font=font_for(expression, label_size, True),
                  fill=(90, 80, 90, 255), anchor="mt")

    swatch_top = bottom - height * 0.1
    swatch = round(height * 0.03)
    for i, (label, color) in enumerate((("hair", look.hair), ("eyes", look.eyes), ("skin", look.skin),
                                        ("outfit", look.outfit), ("accent", look.accent))):
        x = left + i * (right - left) / 5
        draw.rounded_rectangle((x, swatch_top, x + swatch, swatch_top + swatch), radius=6, fill=color + (255,),
                               outline=_INK + (255,), width=2)
        draw.text((x + swatch + 8, swatch_top + swatch / 2), label, font=font_for(label, label_size), fill=_INK + (255,),
                  anchor="lm")
    tags = ", ".join(character.look_tags) or "(no look tags yet: colours picked from the id)"
    tag_font = font_for(tags, label_size)
    for j, line in enumerate(wrap_text(tags, tag_font, right - left)[:3]):
        draw.text((left, swatch_top + swatch * 1.5 + j * label_size * 1.35), line, font=tag_font, fill=_INK + (255,))
    image = write_png(out_dir / f"{stem}.png", sheet.convert("RGB"))
    return PanelResult(image=image, seed=request.seed, model=MODEL)

