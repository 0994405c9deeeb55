"""Deterministic stand-in media for tests and the render benchmark: structured panels (sky, ground,
shapes, outlines: something an encoder has to work at), layered characters with eyes-closed and
mouth-open variants, speech-like tone bursts, and a music bed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

RATE = 48_000


def make_panel(path: Path, seed: int, width: int = 1080, height: int = 1920) -> Path:
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(40, 230, 3), rng.integers(20, 200, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    sky = (top * (1 - ramp) + bottom * ramp).astype(np.uint8).repeat(width, axis=1)
    im = Image.fromarray(sky)
    d = ImageDraw.Draw(im)
    horizon = int(height * rng.uniform(0.55, 0.7))
    d.rectangle([0, horizon, width, height], fill=tuple(int(v) for v in rng.integers(30, 120, 3)))
    for _ in range(14):                       # buildings / trees
        x = int(rng.integers(0, width))
        w, h = int(rng.integers(60, 260)), int(rng.integers(150, 700))
        d.rectangle([x, horizon - h, x + w, horizon], fill=tuple(int(v) for v in rng.integers(20, 160, 3)),
                    outline=(10, 10, 14), width=5)
        for wy in range(horizon - h + 20, horizon - 20, 48):
            d.rectangle([x + 12, wy, x + 30, wy + 22], fill=(230, 220, 140))
    for _ in range(6):                        # figures
        cx, cy = int(rng.integers(100, width - 100)), int(rng.integers(horizon - 200, height - 200))
        r = int(rng.integers(50, 140))
        col = tuple(int(v) for v in rng.integers(60, 255, 3))
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col, outline=(8, 8, 8), width=7)
        d.rectangle([cx - r // 2, cy + r, cx + r // 2, cy + 3 * r], fill=col, outline=(8, 8, 8), width=7)
    im = im.filter(ImageFilter.GaussianBlur(0.8))
    noise = rng.normal(0, 4, (height, width, 1)).astype(np.int16)      # paper grain
    arr = np.clip(np.asarray(im).astype(np.int16) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def make_character_layers(folder: Path, char_id: str, width: int, height: int, seed: int = 0) -> dict[str, Path]:
    """An RGBA character layer plus ``:eyes_closed`` and ``:mouth_open`` variants (panel-sized)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    cx, cy, r = width // 2, int(height * 0.45), width // 5
    skin = tuple(int(v) for v in rng.integers(170, 250, 3)) + (255,)

    def draw(eyes_open: bool, mouth_open: bool) -> Image.Image:
        im = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=skin, outline=(0, 0, 0, 255), width=max(2, r // 20))
        ey, ex, er = cy - r // 4, r // 2, max(3, r // 7)
        for sx in (-1, 1):
            if eyes_open:
                d.ellipse([cx + sx * ex - er, ey - er, cx + sx * ex + er, ey + er], fill=(20, 20, 40, 255))
            else:
                d.line([cx + sx * ex - er, ey, cx + sx * ex + er, ey], fill=(20, 20, 40, 255), width=max(2, er // 2))
        my, mw = cy + r // 2, r // 3
        if mouth_open:
            d.ellipse([cx - mw, my - mw // 2, cx + mw, my + mw // 2], fill=(120, 20, 30, 255))
        else:
            d.line([cx - mw, my, cx + mw, my], fill=(60, 10, 10, 255), width=max(2, r // 25))
        return im

    out = {}
    for name, (eo, mo) in {"": (True, False), ":eyes_closed": (False, False), ":mouth_open": (True, True)}.items():
        p = folder / f"{char_id}{name.replace(':', '_')}.png"
        draw(eo, mo).save(p)
        out[f"char:{char_id}{name}"] = p
    return out


def speech_like(duration: float, seed: int = 0, syllables_per_s: float = 4.0) -> np.ndarray:
    """Tone bursts with a pitch wobble and gaps: loud where a voice would be."""
    rng = np.random.default_rng(seed)
    n = int(duration * RATE)
    t = np.arange(n) / RATE
    f0 = rng.uniform(110, 240)
    voice = np.sin(2 * np.pi * f0 * t * (1 + 0.03 * np.sin(2 * np.pi * 3 * t)))
    voice += 0.5 * np.sin(4 * np.pi * f0 * t) + 0.25 * np.sin(6 * np.pi * f0 * t)
    env = np.zeros(n)
    pos = 0.05
    while pos < duration - 0.1:
        length = rng.uniform(0.12, 0.3)
        a, b = int(pos * RATE), min(n, int((pos + length) * RATE))
        env[a:b] = np.hanning(b - a)
        pos += length + rng.uniform(0.04, 1.0 / syllables_per_s)
    return (0.3 * voice * env).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    import soundfile as sf

    sf.write(str(path), audio, rate, subtype="PCM_16")
    return path


def make_music(path: Path, duration: float, seed: int = 0) -> Path:
    """A looping chord pad with a beat, as a WAV (ffmpeg decodes it like any bed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * RATE)) / RATE
    root = rng.uniform(180, 260)
    pad = sum(np.sin(2 * np.pi * root * r * t) for r in (1, 1.25, 1.5)) / 3
    beat = np.exp(-((t % 0.5) * 30)) * np.sin(2 * np.pi * 60 * t)
    return write_wav(path, (0.25 * pad + 0.35 * beat).astype(np.float32))
