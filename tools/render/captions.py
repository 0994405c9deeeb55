"""Burned-in captions: each cue is drawn once (Pillow, with an outline) and blended per frame only
inside its own box, in the I420 frame, with uint8 OpenCV arithmetic.

Safe area for 9:16 platforms (TikTok, Shorts, Reels overlay their UI on the video):
the top ``SAFE_TOP`` (12 %) holds status/title chrome and the bottom ``SAFE_BOTTOM`` (20 %) holds
buttons and the description, so a caption block's bottom edge sits at ``CAPTION_BOTTOM`` (74 % of the
height, 6 % clear of that zone) and it never rises above ``SAFE_TOP``; lines wrap to fit between the
side margins (``SIDE_MARGIN`` each side).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
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


def render_caption_rgba(text: str, width: int, font_path: Path, language: str):
    """The caption as an RGBA Pillow image (white text, black stroke), wrapped to the safe width."""
    from PIL import Image, ImageDraw

    size = max(10, round(width * FONT_SIZE))
    font = load_font(str(font_path), size, font_index(font_path, language))
    stroke = max(2, size // 12)
    lines = wrap_text(text, font, width * (1 - 2 * SIDE_MARGIN) - 2 * stroke)
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
        for cue in cues:
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
