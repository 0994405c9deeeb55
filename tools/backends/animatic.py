"""The offline default painter: readable animatic/storyboard panels drawn with Pillow.

This is what a creator without a GPU or a diffusion checkpoint gets, so it has to carry the shot:
a backdrop that hints the place and its light, each character as a consistent cel-shaded figure
(colours and hair from the bible's look tags, face showing the expression), the speaker marked,
the camera move drawn as a guide, and the 9:16 safe area respected. It also hands the motion step
separate layers (backdrop, one per character, the guides, the speech bubble), a clean variant (backdrop
and characters only: the finished cut's look) and blink / mouth-open / lip-sync mouth-shape variants
(``:mouth_<shape>``, `tools.lipsync`) of each character layer, so limited animation needs no model
either.

Everything is deterministic: a panel is a function of its request. The place's layout comes from
the location alone (so a location looks the same across shots), small details such as rain
streaks from the location plus ``request.seed``, and a character's look from its id and look tags.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from memory.errors import InputError
from tools.backends._draw import (
    RGB,
    find_font,
    font_for,
    mix,
    parse_color,
    shade,
    wrap_text,
    write_layer_pngs,
    write_png,
)
from tools.backends.animatic_figure import (  # noqa: F401 (re-exported: the public face of the painter)
    _ACCESSORY_WORDS,
    _EXPRESSION_WORDS,
    _EYE_PALETTE,
    _EYE_WORDS,
    _FACE,
    _FACE_BOX,
    _FIG_FEET,
    _FIG_LEFT,
    _FIG_RIGHT,
    _FIG_TOP,
    _FRAMING_ALIASES,
    _HAIR_PALETTE,
    _HAIR_STYLES,
    _HAIR_WORDS,
    _INK,
    _LEG_WORDS,
    _MOVE_ALIASES,
    _OUTFIT_PALETTE,
    _OUTFIT_WORDS,
    _SKIN_TONES,
    _WHITE,
    KINDS,
    MODEL,
    MOUTH_SHAPES,
    SAFE_BOTTOM,
    SAFE_SIDE,
    SAFE_TOP,
    CharacterLook,
    Placement,
    _bangs_outline,
    _bezier,
    _canonical_framing,
    _canonical_move,
    _digest,
    _draw_back_hair,
    _draw_body,
    _draw_face,
    _draw_head,
    _Figure,
    _head_outline,
    _hls,
    _horizon,
    _mirror,
    _Pen,
    _pose_kind,
    _render_figure,
    _slug,
    _visible_characters,
    _words,
    canonical_expression,
    character_look,
    plan_figures,
    safe_rect,
)
from tools.backends.protocols import CharacterInShot, PanelRequest, PanelResult

__all__ = [
    "BUBBLE_TEXT_KEY", "MODEL", "SAFE_BOTTOM", "SAFE_SIDE", "SAFE_TOP", "AnimaticPainter", "CharacterLook", "Placement",
    "bubble_text", "canonical_expression", "character_look", "find_font", "plan_figures", "safe_rect",
]


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


BUBBLE_TEXT_KEY = "storyreel:bubble"   # PNG note on the bubble layer: the exact words it shows


def bubble_text(request: PanelRequest, speaker_name: str | None) -> str:
    """The words the speech bubble shows: the shot's line, without its "Name: " prefix when the
    bubble's tail already points at that speaker (the prefix stays in a narration box)."""
    text = request.line_text.strip()
    if speaker_name:
        head, sep, rest = text.partition(":")
        if sep and rest.strip() and head.strip().casefold() == speaker_name.strip().casefold():
            return rest.strip()
    return text


def _draw_overlay(request: PanelRequest, framing: str, move: str, placements: list[Placement],
                  names: dict[str, CharacterInShot]) -> tuple[Image.Image, Image.Image | None, str]:
    """Annotations on transparent layers: the storyboard's guides (caption strip with the shot id,
    framing and "ANIMATIC SKETCH", camera guide, name tags) and, apart, the speech bubble, so the
    finished cut can show the bubble without the guides, or neither. Returns (guides, bubble or
    None when the shot has no line, the bubble's words)."""
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
    if not request.line_text.strip():
        return overlay, None, ""
    words = bubble_text(request, names[speaker.character_id].name if speaker is not None else None)
    bubble = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    _draw_bubble(ImageDraw.Draw(bubble), words, speaker, (left, content_top, right, bottom - label_h - size), size)
    return overlay, bubble, words


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
                     out_dir / f"{char_stem}.mouth_open.png",
                     *(out_dir / f"{char_stem}.mouth_{m}.png" for m in MOUTH_SHAPES))
            layers[key] = paths[0]
            variants[f"{key}:eyes_closed"], variants[f"{key}:mouth_open"] = paths[1], paths[2]
            for shape, path in zip(MOUTH_SHAPES, paths[3:]):   # lip sync: one variant per mouth shape
                variants[f"{key}:mouth_{shape}"] = path
            if not placement.visible:  # off screen in this framing: transparent layers keep the contract
                empty = Image.new("RGBA", (0, 0))
                write_layer_pngs([(path, empty) for path in paths], (0, 0), size)
                continue
            figure = _render_figure(character_look(character), canonical_expression(character.expression),
                                    placement, full_body, fade, _pose_kind(character.pose), mouths=True)
            offset = placement.box[:2]
            panel.alpha_composite(figure.base, dest=offset)
            face_rows = (placement.face[1] - offset[1], placement.face[3] - offset[1])
            sprites = (figure.base, figure.eyes_closed, figure.mouth_open, *(figure.mouths[m] for m in MOUTH_SHAPES))
            write_layer_pngs(list(zip(paths, sprites)), offset, size,
                             varying_rows=face_rows)

        names = {c.id: c for c in request.characters}
        guides, bubble, words = _draw_overlay(request, framing, move, placements, names)
        # the finished look: backdrop and characters only (the cut adds a bubble or a subtitle)
        variants["clean"] = write_png(out_dir / f"{stem}.clean.png", panel.convert("RGB"))
        layers["guides"] = write_png(out_dir / f"{stem}.guides.png", guides)
        overlay = guides
        if bubble is not None:
            layers["bubble"] = write_png(out_dir / f"{stem}.bubble.png", bubble, text={BUBBLE_TEXT_KEY: words})
            overlay = guides.copy()
            overlay.alpha_composite(bubble)
        _composite_overlay(panel, overlay)
        layers["overlay"] = write_png(out_dir / f"{stem}.overlay.png", overlay)   # guides + bubble, as drawn
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
        reach = max(1.0, look.build)
        box = (max(0, math.floor(cx + _FIG_LEFT * reach * unit)), max(0, math.floor(head_top + _FIG_TOP * unit)),
               min(width, math.ceil(cx + _FIG_RIGHT * reach * unit)),
               min(height, math.ceil(head_top + _FIG_FEET * unit)))
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

