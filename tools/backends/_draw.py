"""Small drawing helpers shared by the offline painters: fonts, colour words, fast PNG writing.

Kept apart from the animatic renderer so that captions, contact sheets and the UI can reuse font
discovery and colour parsing without importing a painter.
"""
from __future__ import annotations

import itertools
import re
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageFont

from memory.errors import InputError

RGB = tuple[int, int, int]

# --------------------------------------------------------------------------- fonts

_LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
_LATIN_BOLD_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
)
_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
_CJK_BOLD_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
) + _CJK_FONTS


def find_font(cjk: bool = False, bold: bool = False) -> Path | None:
    """Path of an installed TrueType font, or None (callers then fall back to Pillow's own font).

    ``cjk=True`` asks for a font with Japanese/Chinese/Korean glyphs (Debian's fonts-noto-cjk);
    Pillow's built-in font has none, so CJK text drawn without one comes out as boxes.
    """
    if cjk:
        candidates = _CJK_BOLD_FONTS if bold else _CJK_FONTS
    else:
        candidates = _LATIN_BOLD_FONTS if bold else _LATIN_FONTS
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def needs_cjk(text: str) -> bool:
    """True when ``text`` has characters outside Latin/Greek/Cyrillic/symbols (kana, kanji, hangul)."""
    return any(ord(ch) >= 0x2E80 for ch in text)


@lru_cache(maxsize=64)
def load_font(size: int, cjk: bool = False, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font of ``size`` pixels; cached because opening a .ttc costs milliseconds per call."""
    path = find_font(cjk=cjk, bold=bold)
    if path is not None:
        return ImageFont.truetype(str(path), size=size)
    return ImageFont.load_default(size=size)


def font_for(text: str, size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The font that can render ``text``: the CJK one when the text needs it, else the Latin one."""
    return load_font(size, cjk=needs_cjk(text), bold=bold)


def wrap_text(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float) -> list[str]:
    """Greedy word wrap by measured width; text without spaces (Japanese) wraps per character."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        tokens = re.findall(r"\S+\s*", paragraph) if " " in paragraph.strip() else list(paragraph)
        current = ""
        for token in tokens:
            candidate = current + token
            if current and font.getlength(candidate.rstrip()) > max_width:
                lines.append(current.rstrip())
                current = token
            else:
                current = candidate
            while font.getlength(current.rstrip()) > max_width and len(current) > 1:
                # A single word wider than the box: break it by characters.
                cut = len(current) - 1
                while cut > 1 and font.getlength(current[:cut]) > max_width:
                    cut -= 1
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current.rstrip())
    return lines


# --------------------------------------------------------------------------- colours

# Colour words that look tags and palettes use, beyond CSS names (anime hair shades mostly).
COLOR_WORDS: dict[str, RGB] = {
    "black": (34, 30, 38), "white": (240, 240, 236), "silver": (200, 204, 214),
    "grey": (128, 128, 134), "gray": (128, 128, 134), "platinum": (228, 226, 214),
    "red": (200, 40, 48), "crimson": (170, 20, 48), "scarlet": (220, 40, 30),
    "maroon": (120, 30, 40), "burgundy": (120, 24, 48), "wine": (114, 30, 52),
    "orange": (240, 130, 40), "ginger": (210, 110, 50), "amber": (240, 170, 40),
    "yellow": (240, 210, 60), "gold": (220, 180, 60), "golden": (226, 184, 70),
    "blonde": (240, 214, 130), "blond": (240, 214, 130), "honey": (220, 170, 90),
    "brown": (110, 70, 45), "chestnut": (140, 80, 50), "auburn": (150, 60, 40),
    "tan": (200, 160, 120), "beige": (220, 200, 170), "cream": (244, 234, 210),
    "green": (60, 150, 80), "emerald": (30, 150, 100), "olive": (120, 130, 60),
    "mint": (160, 220, 190), "teal": (40, 140, 140), "turquoise": (60, 200, 200),
    "cyan": (70, 200, 220), "aqua": (90, 210, 220),
    "blue": (50, 90, 200), "navy": (30, 40, 90), "sky": (130, 190, 240),
    "azure": (80, 150, 230), "cobalt": (40, 70, 170), "indigo": (70, 50, 140),
    "purple": (120, 60, 160), "violet": (140, 90, 200), "lavender": (180, 160, 220),
    "lilac": (190, 160, 210), "magenta": (200, 50, 150),
    "pink": (240, 150, 180), "rose": (230, 100, 130), "peach": (250, 190, 160),
    "coral": (240, 120, 100), "salmon": (240, 140, 120),
}

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def parse_color(value: str) -> RGB:
    """An RGB triple from '#aabbcc', 'abc', a colour word ('silver', 'navy') or a CSS name.

    Raises InputError naming the value when it is none of those.
    """
    text = value.strip().lower()
    match = _HEX.match(text)
    if match:
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(ch * 2 for ch in digits)
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    words = text.replace("-", " ").split()
    if words and words[-1] in COLOR_WORDS:
        base = COLOR_WORDS[words[-1]]
        if len(words) > 1 and words[0] in ("dark", "deep"):
            return shade(base, 0.6)
        if len(words) > 1 and words[0] in ("light", "pale", "pastel"):
            return mix(base, (255, 255, 255), 0.45)
        return base
    try:
        rgb = ImageColor.getrgb(text.replace(" ", ""))
    except ValueError:
        raise InputError(
            f"palette colour {value!r} is not a hex code or colour name; use e.g. '#3a4f8c' or 'navy'"
        ) from None
    return (rgb[0], rgb[1], rgb[2])


def find_color_word(text: str) -> RGB | None:
    """The colour named in a phrase like 'long silver hair' or 'dark red scarf', if any."""
    words = re.findall(r"[a-z]+", text.lower())
    for i, word in enumerate(words):
        if word in COLOR_WORDS:
            prefix = words[i - 1] if i > 0 else ""
            return parse_color(f"{prefix} {word}" if prefix in ("dark", "deep", "light", "pale", "pastel") else word)
    return None


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend from a (t=0) to b (t=1)."""
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def shade(color: RGB, factor: float) -> RGB:
    """Darken (factor < 1) or brighten (factor > 1) a colour, clamped to 0..255."""
    return (min(255, round(color[0] * factor)), min(255, round(color[1] * factor)), min(255, round(color[2] * factor)))


# --------------------------------------------------------------------------- fast PNG writing
#
# Pillow's PNG encoder tries five filters on every row and deflates every byte: 50-100 ms for a
# 1080x1920 RGBA frame. A panel writes nine such frames, most of them transparent layers, so we
# write PNGs ourselves: the "up" filter computed with numpy, zlib level 1, and the image cut into
# row segments that are deflated independently (each ends on a full flush and starts with an
# unfiltered row), so that
#   - runs of all-zero rows (a layer's transparent surroundings) come from a per-width cache, and
#   - rows shared by several images (a character layer and its blink / mouth variants, which
#     differ only in the face rows) are deflated once and reused.
# The output is a standard 8-bit RGB/RGBA PNG that any decoder reads back losslessly.
# With the optional ``isal`` package (ISA-L), deflate runs about five times faster than zlib's
# level 1 with a slightly smaller result; without it zlib is used.

try:
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - depends on the environment
    _fast_zlib = zlib

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ADLER_MOD = 65521
_ZERO_RUN_ROWS = (256, 16, 1)
_MIN_ZERO_RUN = 8


@dataclass(frozen=True)
class _Deflated:
    """One independently deflated run of PNG scanlines."""

    data: bytes     # raw deflate blocks, ending on a full flush (no final block)
    adler: int      # adler32 of the uncompressed scanline bytes
    length: int     # number of uncompressed bytes


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """adler32 of A+B from adler32(A), adler32(B) and len(B) (zlib's adler32_combine)."""
    rem = second_length % _ADLER_MOD
    sum1 = first & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_MOD
    sum1 += (second & 0xFFFF) + _ADLER_MOD - 1
    sum2 += (first >> 16) + (second >> 16) + _ADLER_MOD - rem
    sum1 %= _ADLER_MOD
    sum2 %= _ADLER_MOD
    return sum1 | (sum2 << 16)


@lru_cache(maxsize=32)
def _deflated_zero_block(nbytes: int) -> bytes:
    # zlib, not isal: computed once per width, and zlib packs zeros about 70 times tighter.
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    return compressor.compress(bytes(nbytes)) + compressor.flush(zlib.Z_FULL_FLUSH)


def _zero_rows(count: int, row_bytes: int) -> _Deflated:
    """``count`` all-zero scanlines (filter byte 0, zero pixels) from cached deflate blocks."""
    parts: list[bytes] = []
    left = count
    for unit in _ZERO_RUN_ROWS:
        if left >= unit:
            repeats, left = divmod(left, unit)
            parts.append(_deflated_zero_block(unit * row_bytes) * repeats)
    length = count * row_bytes
    return _Deflated(b"".join(parts), ((length % _ADLER_MOD) << 16) | 1, length)


def _pixel_rows(rows: np.ndarray) -> _Deflated:
    """Scanlines for pixel rows (h, row_bytes): first row unfiltered, the rest 'up' filtered."""
    height, width = rows.shape
    raw = np.empty((height, width + 1), dtype=np.uint8)
    raw[0, 0] = 0
    raw[1:, 0] = 2
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])
    compressor = _fast_zlib.compressobj(1, _fast_zlib.DEFLATED, -15)
    data = compressor.compress(raw.data) + compressor.flush(_fast_zlib.Z_FULL_FLUSH)
    return _Deflated(data, _fast_zlib.adler32(raw.data), raw.size)


def _png(width: int, height: int, channels: int, parts: list[_Deflated]) -> bytes:
    """Wrap deflated scanline runs (in row order) into one zlib stream and a PNG file."""
    adler = 1
    for part in parts:
        adler = _adler32_combine(adler, part.adler, part.length)
    final = zlib.compressobj(1, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    stream = b"".join([b"\x78\x01", *(part.data for part in parts), final, struct.pack(">I", adler)])
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if channels == 4 else 2, 0, 0, 0)
    return _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes for an (H, W, 3|4) uint8 array; runs of fully transparent rows are spliced in
    from the zero cache instead of being deflated."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise InputError(f"cannot write a PNG from an array of shape {pixels.shape} and type {pixels.dtype}")
    height, width, channels = pixels.shape
    if height == 0 or width == 0:
        raise InputError(f"cannot write an empty {width}x{height} PNG")
    flat = np.ascontiguousarray(pixels).reshape(height, width * channels)
    row_bytes = width * channels + 1
    if channels == 3:
        return _png(width, height, channels, [_pixel_rows(flat)])
    nonzero = flat.view(np.uint32).any(axis=1)
    edges = np.flatnonzero(np.diff(nonzero.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), height]
    parts: list[_Deflated] = []
    data_start: int | None = None
    for start, stop in itertools.pairwise(bounds):
        if not nonzero[start] and stop - start >= _MIN_ZERO_RUN:
            if data_start is not None:
                parts.append(_pixel_rows(flat[data_start:start]))
                data_start = None
            parts.append(_zero_rows(stop - start, row_bytes))
        elif data_start is None:
            data_start = start
    if data_start is not None:
        parts.append(_pixel_rows(flat[data_start:]))
    return _png(width, height, channels, parts)


def write_png(path: Path, image: Image.Image, text: dict[str, str] | None = None) -> Path:
    """Write an RGB or RGBA image as PNG quickly (see the note above); returns ``path``.

    ``text``: key/value notes stored in the file as UTF-8 ``iTXt`` chunks (Pillow reads them back
    as ``Image.open(path).text``), e.g. the words a speech bubble layer shows."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    data = encode_png(np.asarray(image))
    if text:
        notes = b"".join(_chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8"))
                         for key, value in text.items())
        head = len(_PNG_SIGNATURE) + 25                 # signature + IHDR: notes go before the pixels
        data = data[:head] + notes + data[head:]
    path.write_bytes(data)
    return path


def png_text(path: Path) -> dict[str, str]:
    """The uncompressed text notes (iTXt/tEXt) a PNG carries before its pixels, without decoding the
    image; {} when it has none or cannot be read."""
    notes: dict[str, str] = {}
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != _PNG_SIGNATURE:
                return {}
            while True:
                header = fh.read(8)
                if len(header) < 8:
                    return notes
                length, kind = struct.unpack(">I4s", header)
                if kind in (b"IDAT", b"IEND") or length > 1 << 20:
                    return notes
                body = fh.read(length)
                fh.read(4)
                if kind == b"tEXt" and b"\x00" in body:
                    key, value = body.split(b"\x00", 1)
                    notes[key.decode("latin-1")] = value.decode("latin-1")
                elif kind == b"iTXt" and body.count(b"\x00") >= 3:
                    key, rest = body.split(b"\x00", 1)
                    if rest[:1] == b"\x00":                  # not compressed
                        _lang, _translated, value = rest[2:].split(b"\x00", 2)
                        notes[key.decode("latin-1")] = value.decode("utf-8", errors="replace")
    except OSError:
        return {}


def write_layer_pngs(targets: list[tuple[Path, Image.Image]], offset: tuple[int, int], size: tuple[int, int],
                     varying_rows: tuple[int, int] | None = None) -> None:
    """Write full-size transparent RGBA PNGs, each holding its sprite at ``offset``.

    The full frame is never built: rows above and below the sprite come from the zero cache.
    Sprites that are equal outside ``varying_rows`` (sprite rows ``start:stop``, e.g. a
    character and its blink variant) share the deflated rows outside that band.
    """
    width, height = size
    x, y = offset
    if not targets:
        return
    sprite_w, sprite_h = targets[0][1].size
    for path, sprite in targets:
        if sprite.size != (sprite_w, sprite_h) or sprite.mode != "RGBA":
            raise InputError(f"layer sprite for {path.name} is {sprite.mode} {sprite.size}; "
                             f"all sprites of one layer must be RGBA {(sprite_w, sprite_h)}")
    row_bytes = width * 4 + 1
    if sprite_w == 0 or sprite_h == 0:
        empty = _png(width, height, 4, [_zero_rows(height, row_bytes)])
        for path, _ in targets:
            path.write_bytes(empty)
        return
    if x < 0 or y < 0 or x + sprite_w > width or y + sprite_h > height:
        raise InputError(f"layer sprite at {offset} of size {(sprite_w, sprite_h)} does not fit a {size} frame")

    arrays = [np.asarray(sprite) for _, sprite in targets]   # one copy out of Pillow per sprite

    def band(pixels: np.ndarray, start: int, stop: int) -> np.ndarray:
        rows = np.zeros((stop - start, width * 4), dtype=np.uint8)
        rows[:, x * 4:(x + sprite_w) * 4] = pixels[start:stop].reshape(stop - start, sprite_w * 4)
        return rows

    top, bottom = _zero_rows(y, row_bytes), _zero_rows(height - y - sprite_h, row_bytes)
    start, stop = varying_rows if varying_rows is not None else (0, sprite_h)
    start, stop = max(0, min(start, sprite_h)), max(0, min(stop, sprite_h))
    first = arrays[0]
    shared = all(np.array_equal(other[:start], first[:start]) and np.array_equal(other[stop:], first[stop:])
                 for other in arrays[1:])
    if not shared:
        start, stop = 0, sprite_h
    above = _pixel_rows(band(first, 0, start)) if start > 0 else None
    below = _pixel_rows(band(first, stop, sprite_h)) if stop < sprite_h else None
    for (path, _), pixels in zip(targets, arrays):
        parts = [top]
        if above is not None:
            parts.append(above)
        if stop > start:
            parts.append(_pixel_rows(band(pixels, start, stop)))
        if below is not None:
            parts.append(below)
        parts.append(bottom)
        path.write_bytes(_png(width, height, 4, parts))
