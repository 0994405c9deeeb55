"""Burned-in captions: each cue is drawn once (Pillow, with an outline) and blended per frame only
inside its own box, in the I420 frame, with uint8 OpenCV arithmetic.

Safe area for 9:16 platforms (TikTok, Shorts, Reels overlay their UI on the video):
the top ``SAFE_TOP`` (12 %) holds status/title chrome and the bottom ``SAFE_BOTTOM`` (20 %) holds
buttons and the description, so a caption block's bottom edge sits at ``CAPTION_BOTTOM`` (74 % of the
height, 6 % clear of that zone) and it never rises above ``SAFE_TOP``; lines wrap to fit between the
side margins (``SIDE_MARGIN`` each side).

A spoken line longer than one caption holds (``MAX_LINES`` lines of about ``MAX_LINE_CHARS``
characters) becomes consecutive captions, each on screen for a share of the line's time in proportion
to its characters (``split_cues``); the burned captions, the SRT and the WebVTT all use that split.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from memory.errors import InputError
from tools.render.spec import CaptionCue

SAFE_TOP = 0.12
SAFE_BOTTOM = 0.20
CAPTION_BOTTOM = 0.74
SIDE_MARGIN = 0.08
FONT_SIZE = 0.052          # of the frame width (56 px at 1080)
LINE_GAP = 0.25            # of the font size
MIN_FONT_SIZE = 0.03       # of the frame width: a long caption line shrinks to this (a full 42-character
                           # line fits a 9:16 frame) before it would wrap
MAX_LINE_CHARS = 42        # per caption line (a CJK character counts as two)
MAX_LINES = 2              # per caption

CJK_FONT_DIRS = (Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts/truetype/noto"))
CJK_FONT_NAMES = ("NotoSansCJK-Bold.ttc", "NotoSansCJK-Regular.ttc", "NotoSerifCJK-Bold.ttc")
LATIN_FONTS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
               Path("/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"))
#: face order inside Noto Sans CJK collections
CJK_INDEX = {"ja": 0, "ko": 1, "zh": 2, "zh-cn": 2, "zh-hans": 2, "zh-tw": 3, "zh-hant": 3, "zh-hk": 4}
CJK_LANGUAGES = ("ja", "zh", "ko")


def is_cjk(text: str) -> bool:
    """True when the text holds CJK ideographs, kana or hangul (needs a CJK font)."""
    for ch in text:
        name = unicodedata.name(ch, "")
        if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "FULLWIDTH", "IDEOGRAPHIC")):
            return True
    return False


def _needs_cjk(language: str, text: str) -> bool:
    return language.lower().split("-")[0] in CJK_LANGUAGES or is_cjk(text)


def find_caption_font(language: str, text: str = "") -> Path:
    """The font file for captions in ``language`` (a CJK collection for ja/zh/ko or CJK text)."""
    cjk = [d / n for n in CJK_FONT_NAMES for d in CJK_FONT_DIRS if (d / n).is_file()]
    if _needs_cjk(language, text):
        if not cjk:
            raise InputError(
                f"captions in {language!r} need a CJK font and none is installed; install the Debian "
                "package fonts-noto-cjk (apt-get install fonts-noto-cjk) or set EpisodeSpec.font")
        return cjk[0]
    for path in LATIN_FONTS:
        if path.is_file():
            return path
    if cjk:
        return cjk[0]
    raise InputError("no caption font found; install fonts-dejavu-core or fonts-noto-cjk, or set EpisodeSpec.font")


def font_index(path: Path, language: str) -> int:
    """Face index inside a .ttc collection: the regional variant for the language (JP by default)."""
    if Path(path).suffix.lower() != ".ttc":
        return 0
    return CJK_INDEX.get(language.lower(), CJK_INDEX.get(language.lower().split("-")[0], 0))


@lru_cache(maxsize=16)
def load_font(path: str, size: int, index: int = 0):
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, size, index=index)
    except OSError as exc:
        raise InputError(f"caption font {path} cannot be read ({exc}); pick another font file") from exc


def wrap_text(text: str, font, max_width: float) -> list[str]:
    """Greedy wrap: by words where there are spaces, by characters for CJK runs."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        tokens = para.split(" ") if not is_cjk(para) else list(para)
        sep = " " if not is_cjk(para) else ""
        line = ""
        for tok in tokens:
            trial = tok if not line else line + sep + tok
            if font.getlength(trial) <= max_width or not line:
                line = trial
            else:
                lines.append(line)
                line = tok
        lines.append(line)
    return lines


def text_width(text: str) -> int:
    """Width in caption character cells: East Asian wide/fullwidth characters count as two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def caption_lines(text: str, max_chars: int = MAX_LINE_CHARS) -> list[str]:
    """Break a line of dialogue into caption lines of at most ``max_chars`` cells: at spaces where
    there are any, between characters in CJK text, a word longer than a line by characters."""
    out: list[str] = []
    for para in text.split("\n"):
        words = para.split()
        if not words:
            continue
        line = ""
        for word in words:
            tokens = list(word) if is_cjk(word) else [word]
            for tok in tokens:
                sep = " " if line and not (is_cjk(tok) and is_cjk(line[-1])) else ""
                if line and text_width(line + sep + tok) > max_chars:
                    out.append(line)
                    line, sep = "", ""
                while text_width(tok) > max_chars:          # one word wider than a line
                    cut = len(tok)
                    while cut > 1 and text_width(tok[:cut]) > max_chars:
                        cut -= 1
                    out.append(tok[:cut])
                    tok = tok[cut:]
                line = line + sep + tok if line else tok
        if line:
            out.append(line)
    return out


def split_caption_text(text: str, max_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES) -> list[str]:
    """The captions one spoken line becomes: each at most ``max_lines`` lines (joined by newlines)
    of ``max_chars`` cells. Lines are spread evenly over the captions, so a line just too long for
    one caption becomes two balanced ones rather than a full one and an orphan word."""
    lines = caption_lines(text.strip(), max_chars)
    if not lines:
        return []
    count = -(-len(lines) // max_lines)
    if count == 1:
        return ["\n".join(lines)]
    # the narrowest lines that still fit in `count` captions: balanced captions, no orphan word
    total = text_width(" ".join(lines))
    longest = max([text_width(w) for w in text.split() if not is_cjk(w)] + [2])
    for cells in range(min(max_chars, max(longest, total // (count * max_lines))), max_chars + 1):
        narrower = caption_lines(text.strip(), cells)
        if len(narrower) <= count * max_lines:
            lines = narrower
            break
    return ["\n".join(lines[i:i + max_lines]) for i in range(0, len(lines), max_lines)]


def split_cues(cues: tuple[CaptionCue, ...] | list[CaptionCue], max_chars: int = MAX_LINE_CHARS,
               max_lines: int = MAX_LINES) -> tuple[CaptionCue, ...]:
    """Every cue as captions that fit (see ``split_caption_text``), consecutive in time, each lasting
    a share of the cue in proportion to its characters. Empty cues are dropped."""
    out: list[CaptionCue] = []
    for cue in cues:
        parts = split_caption_text(cue.text, max_chars, max_lines)
        if len(parts) <= 1:
            if parts:
                out.append(cue if cue.text == parts[0] else replace(cue, text=parts[0]))
            continue
        weights = [max(1, text_width(p.replace("\n", " "))) for p in parts]
        total, t, acc = sum(weights), cue.start, 0
        for part, weight in zip(parts, weights):
            acc += weight
            end = cue.end if acc == total else cue.start + (cue.end - cue.start) * acc / total
            out.append(replace(cue, text=part, start=t, end=end))
            t = end
    return tuple(out)


def render_caption_rgba(text: str, width: int, font_path: Path, language: str):
    """The caption as an RGBA Pillow image (white text, black stroke). Lines the text already has
    (from ``split_caption_text``) are kept: the font shrinks (down to ``MIN_FONT_SIZE``) until the
    widest fits the safe width, and only a line that still does not fit is wrapped."""
    from PIL import Image, ImageDraw

    size = max(10, round(width * FONT_SIZE))
    avail = width * (1 - 2 * SIDE_MARGIN)
    given = [ln for ln in text.split("\n") if ln.strip()] or [text]
    index = font_index(font_path, language)
    font = load_font(str(font_path), size, index)
    widest = max(font.getlength(ln) for ln in given) + 2 * max(2, size // 12)
    if widest > avail:
        size = max(round(width * MIN_FONT_SIZE), int(size * avail / widest), 10)
        font = load_font(str(font_path), size, index)
    stroke = max(2, size // 12)
    lines = [w for ln in given for w in wrap_text(ln, font, avail - 2 * stroke)]
    body = "\n".join(lines)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    spacing = round(size * LINE_GAP)
    x0, y0, x1, y1 = (int(v) for v in probe.multiline_textbbox((0, 0), body, font=font, stroke_width=stroke,
                                              spacing=spacing, align="center"))
    x1, y1 = x1 + 1, y1 + 1
    img = Image.new("RGBA", (x1 - x0 + 4, y1 - y0 + 4), (0, 0, 0, 0))
    ImageDraw.Draw(img).multiline_text((2 - x0, 2 - y0), body, font=font, fill=(255, 255, 255, 255),
                                       stroke_width=stroke, stroke_fill=(0, 0, 0, 255), spacing=spacing,
                                       align="center")
    return img


@dataclass(frozen=True)
class CaptionPatch:
    """A cue ready to blend: premultiplied Y/U/V and inverse alpha (full and half resolution)."""

    cue: CaptionCue
    x: int
    y: int
    planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    inv: tuple[np.ndarray, np.ndarray]

    @property
    def size(self) -> tuple[int, int]:
        return self.planes[0].shape[1], self.planes[0].shape[0]


class CaptionTrack:
    """A shot's captions, pre-rendered once; ``apply_i420`` blends the active ones into a frame."""

    def __init__(self, cues: tuple[CaptionCue, ...], width: int, height: int, font_path: Path | None,
                 language: str) -> None:
        self.w, self.h = width, height
        self.patches: list[CaptionPatch] = []
        for cue in split_cues(cues):
            if not cue.text.strip():
                continue
            path = font_path or find_caption_font(language, cue.text)
            self.patches.append(self._prepare(cue, render_caption_rgba(cue.text, width, path, language)))

    def _prepare(self, cue: CaptionCue, img) -> CaptionPatch:
        import cv2

        rgba = np.asarray(img)
        ph, pw = rgba.shape[:2]
        pw, ph = min(pw + pw % 2, self.w), min(ph + ph % 2, self.h)
        buf = np.zeros((ph, pw, 4), np.uint8)
        buf[:rgba.shape[0], :rgba.shape[1]] = rgba[:ph, :pw]
        bottom = int(self.h * CAPTION_BOTTOM)
        y = max(int(self.h * SAFE_TOP), bottom - ph) // 2 * 2
        x = max(0, (self.w - pw) // 2) // 2 * 2
        a = buf[..., 3]
        yuv = cv2.cvtColor(np.ascontiguousarray(buf[..., :3]), cv2.COLOR_RGB2YUV_I420)
        from tools.render.motion import i420_planes

        py, pu, pv = (np.ascontiguousarray(p) for p in i420_planes(yuv, ph, pw))
        a2 = cv2.resize(a, (pw // 2, ph // 2), interpolation=cv2.INTER_AREA)
        prem = tuple(cv2.multiply(p, al, scale=1 / 255) for p, al in ((py, a), (pu, a2), (pv, a2)))
        return CaptionPatch(cue, x, y, prem, (255 - a, 255 - a2))

    def active(self, t: float) -> list[CaptionPatch]:
        return [p for p in self.patches if p.cue.start <= t < p.cue.end]

    def apply_i420(self, buf: np.ndarray, t: float) -> bool:
        """Blend the captions active at shot time t into ``buf`` in place; True if any was drawn."""
        import cv2

        from tools.render.motion import i420_planes

        patches = self.active(t)
        lift = 0
        for p in reversed(patches):             # later cues stack above earlier ones
            pw, ph = p.size
            y = max(0, p.y - lift)
            lift += ph
            planes = i420_planes(buf, self.h, self.w)
            for k, (plane, src) in enumerate(zip(planes, p.planes)):
                sc = 1 if k == 0 else 2
                inv = p.inv[0] if k == 0 else p.inv[1]
                roi = plane[y // sc:y // sc + ph // sc, p.x // sc:p.x // sc + pw // sc]
                cv2.multiply(roi, inv, dst=roi, scale=1 / 255)
                cv2.add(roi, src, dst=roi)
        return bool(patches)
