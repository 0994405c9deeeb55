"""Limited animation for one shot: camera moves, parallax, blinks, mouth flaps, grade, transitions.

Frames are made in planar YUV 4:2:0 (I420, BT.601 limited range, the layout x264 consumes), so a
camera move over a flat panel is three ``cv2.warpAffine`` calls on 1.5 bytes per pixel from a source
that was scaled, graded and converted once per shot; nothing resizes the full panel per frame and
nothing leaves uint8. Layered shots (parallax, blinks, mouths) are composited in RGB inside each
character's bounding box and converted with one ``cv2.cvtColor``. ``CameraMotion.frame`` gives RGB
for callers that want pictures rather than encoder input.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from memory.errors import InputError
from tools.render.spec import OVERLAY_LAYERS, ShotSpec

#: how far each move zooms (1.0 = the panel just covers the frame)
PUSH_ZOOM = 1.15
PAN_ZOOM = 1.12
SHAKE_ZOOM = 1.08
#: parallax: how strongly each layer follows the camera (characters = 1)
DEPTH = {"backdrop": 0.5, "char": 1.0, "overlay": 1.3}
#: impact flash length (seconds) and blink timing
FLASH_S = 0.25
BLINK_GAP_S = (2.0, 6.0)
#: mouth hysteresis on the normalised take envelope
MOUTH_OPEN_AT = 0.35
MOUTH_CLOSE_AT = 0.18

Y_BLACK, Y_WHITE, C_ZERO = 16, 235, 128


@runtime_checkable
class VideoMotion(Protocol):
    """A shot as a function of time: ``frame(t)`` is an H×W×3 uint8 RGB picture."""

    def frame(self, t: float) -> np.ndarray: ...


# --------------------------------------------------------------------------- small helpers


def ease(p: float, kind: str = "in_out") -> float:
    p = min(1.0, max(0.0, p))
    if kind == "linear":
        return p
    if kind == "in":
        return p * p * p
    if kind == "out":
        return 1.0 - (1.0 - p) ** 3
    return 4 * p * p * p if p < 0.5 else 1.0 - (-2 * p + 2) ** 3 / 2


def grade_rgb(rgb: np.ndarray, grade: str) -> np.ndarray:
    """Colour grade an RGB uint8 image once per shot: per-channel 256-entry LUTs (cv2.LUT), plus a
    channel mix for the grades that change saturation."""
    import cv2

    if grade == "none":
        return rgb
    x = np.arange(256, dtype=np.float32)
    if grade in ("desaturated", "night"):
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        keep = 0.35 if grade == "desaturated" else 0.55
        rgb = cv2.addWeighted(rgb, keep, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), 1 - keep, 0)
    curves = {
        "warm": (x * 1.06 + 10, x * 1.01 + 3, x * 0.88),
        "cool": (x * 0.88, x * 0.98 + 2, x * 1.05 + 12),
        "desaturated": (x * 0.92 + 12, x * 0.92 + 12, x * 0.92 + 12),
        "night": (x * 0.45, x * 0.55 + 4, x * 0.7 + 18),
    }[grade]
    lut = np.stack([np.clip(c, 0, 255) for c in curves], axis=1).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(np.ascontiguousarray(rgb), lut)


def i420_planes(buf: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes inside an I420 buffer of shape (H*3/2, W)."""
    flat = buf.reshape(-1)
    ys, cs = height * width, (height // 2) * (width // 2)
    return (flat[:ys].reshape(height, width), flat[ys:ys + cs].reshape(height // 2, width // 2),
            flat[ys + cs:ys + 2 * cs].reshape(height // 2, width // 2))


def rgb_to_i420(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)


def i420_to_rgb(buf: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(buf, cv2.COLOR_YUV2RGB_I420)


def solid_i420(height: int, width: int, y: int, c: int = C_ZERO) -> np.ndarray:
    buf = np.empty((height * 3 // 2, width), np.uint8)
    buf[:height] = y
    buf[height:] = c
    return buf


def _load_rgba(path: Path, what: str) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{what} {path} is not a readable image; re-export it as PNG")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    if img.dtype != np.uint8:
        img = (img / 257).astype(np.uint8)
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGBA)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def take_envelope(shot: ShotSpec, fps: int) -> np.ndarray:
    """Per-frame RMS of the shot's takes (max over takes), normalised to 0..1."""
    from tools.render.audio_mix import read_take

    n = max(1, round(shot.duration * fps))
    env = np.zeros(n, np.float32)
    for take in shot.takes:
        audio, sr = read_take(take.wav, shot.shot_id)
        offset = round(take.start * sr)
        length = round(n * sr / fps)
        placed = np.zeros(length, np.float32)
        a0, b0 = max(0, offset), min(length, offset + len(audio))
        if b0 > a0:
            placed[a0:b0] = audio[a0 - offset:b0 - offset]
        edges = np.round(np.arange(n) * sr / fps).astype(np.int64)
        sums = np.add.reduceat(placed.astype(np.float64) ** 2, edges)
        counts = np.diff(np.append(edges, length)).clip(min=1)
        env = np.maximum(env, np.sqrt(sums / counts).astype(np.float32))
    peak = float(env.max())
    return env / peak if peak > 1e-6 else env


def mouth_schedule(envelope: np.ndarray) -> np.ndarray:
    """Open/closed per frame from the envelope, with hysteresis so the mouth does not chatter."""
    out = np.zeros(len(envelope), bool)
    is_open = False
    for k, e in enumerate(envelope):
        if is_open and e < MOUTH_CLOSE_AT:
            is_open = False
        elif not is_open and e > MOUTH_OPEN_AT:
            is_open = True
        out[k] = is_open
    return out


def mouth_shapes(shot: ShotSpec, fps: int) -> dict[str, list[str]]:
    """Per speaking character, the mouth each frame of the shot shows.

    Takes with a phoneme track (`TakeCue.visemes`) give a shape per frame (`tools.lipsync.SHAPES`);
    takes without one (uploads, OpenAI speech) flap on loudness: ``"open"`` where the envelope
    opens the mouth. A take with a ``speaker`` moves only that character's mouth; one without moves
    every speaker's.
    """
    from dataclasses import replace

    from tools.lipsync import read_track, shapes_per_frame

    n = max(1, round(shot.duration * fps))
    tracks: dict[Path, list] = {}
    envelopes: dict[tuple, np.ndarray] = {}
    out: dict[str, list[str]] = {}
    for cid in shot.speakers:
        mine = [t for t in shot.takes if not t.speaker or t.speaker == cid]
        tracked = []
        for take in mine:
            if take.visemes is not None:
                if take.visemes not in tracks:
                    tracks[take.visemes] = read_track(take.visemes)
                tracked.append((take.start, tracks[take.visemes]))
        frames = shapes_per_frame(tracked, n, fps) if tracked else ["rest"] * n
        untracked = tuple(t for t in mine if t.visemes is None)
        if untracked:
            if untracked not in envelopes:
                envelopes[untracked] = mouth_schedule(take_envelope(replace(shot, takes=untracked), fps))
            flaps = envelopes[untracked]
            frames = ["open" if flaps[k] and frames[k] == "rest" else frames[k] for k in range(n)]
        out[cid] = frames
    return out


def blink_schedule(seed: int, char_id: str, duration: float, fps: int) -> list[tuple[float, float]]:
    """Blinks at natural, seeded intervals (2-6 s apart, 3-4 frames each): (start, end) seconds."""
    import zlib

    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(char_id.encode())])
    t = float(rng.uniform(0.4, 2.5))
    out = []
    while t < duration:
        frames = int(rng.integers(3, 5))
        out.append((t, t + frames / fps))
        t += float(rng.uniform(*BLINK_GAP_S))
    return out


# --------------------------------------------------------------------------- the camera


def _cv_threads() -> int:
    """OpenCV's own worker threads for a frame's warps. x264 already keeps every core busy, so
    splitting a 6 ms warp across cores only adds hand-offs: 1 unless STORYREEL_CV_THREADS says."""
    import os

    value = os.environ.get("STORYREEL_CV_THREADS", "1")
    return int(value) if value.isdigit() else 1


class CameraMotion:
    """One shot as frames: camera move (+ parallax), blinks, mouth flaps, grade, vignette, flicker,
    flash. Built once per shot (sources pre-scaled, graded, converted); ``frame_i420`` is re-entrant
    so two transition segments may share an instance across threads."""

    def __init__(self, shot: ShotSpec, width: int, height: int, fps: int) -> None:
        import cv2

        cv2.setNumThreads(_cv_threads())
        self.shot, self.w, self.h, self.fps = shot, width, height, fps
        self.duration = max(1, round(shot.duration * fps)) / fps
        panel = _load_rgba(shot.panel, f"shot {shot.shot_id}: panel")
        self.ph, self.pw = panel.shape[:2]
        self.cover = max(width / self.pw, height / self.ph)   # panel px -> output px at zoom 1
        self.zmax = {"push-in": PUSH_ZOOM, "pull-out": PUSH_ZOOM, "pan": PAN_ZOOM, "tilt": PAN_ZOOM,
                     "shake": SHAKE_ZOOM}.get(shot.camera_move, 1.0)
        self.moving = shot.camera_move != "static"
        self._post_vignette = None
        mask = self._make_vignette() if shot.vignette else None
        self.layered = bool(shot.layers)
        self._mouths = mouth_shapes(shot, fps) if shot.speakers and shot.takes else {}
        if not self.layered:
            rgb = self._prescale(panel[..., :3], self.zmax, cv2.INTER_AREA, even=True)
            rgb = grade_rgb(rgb, shot.grade)
            if mask is not None and not self.moving and rgb.shape[:2] == (height, width):
                rgb = (rgb.astype(np.uint16) * mask[..., None] // 255).astype(np.uint8)  # baked once
                mask = None
            self.src_h, self.src_w = rgb.shape[:2]
            self._src = rgb_to_i420(rgb)
            self._src_planes = i420_planes(self._src, self.src_h, self.src_w)
            self._shifted: dict[tuple[int, float, float], np.ndarray] = {}
        else:
            self._build_layers(panel)
        if mask is not None:
            self._post_vignette = self._vignette_i420(mask)
        self.blinks = {cid: blink_schedule(shot.seed, cid, self.duration, fps) for cid in self._char_ids()}
        self._flicker_luts: dict[int, np.ndarray] = {}

    # ---------------------------------------------------------------- set-up

    def _char_ids(self) -> list[str]:
        return [k.split(":", 1)[1] for k in self.shot.layers if k.startswith("char:")]

    def _prescale(self, img: np.ndarray, k: float, interp: int, even: bool = False) -> np.ndarray:
        import cv2

        sw = max(2, round(self.pw * self.cover * k))
        sh = max(2, round(self.ph * self.cover * k))
        if even:
            sw, sh = sw + sw % 2, sh + sh % 2
        if (sw, sh) == (img.shape[1], img.shape[0]):
            return np.ascontiguousarray(img)
        return cv2.resize(img, (sw, sh), interpolation=interp)

    def _make_vignette(self) -> np.ndarray:
        """A multiplicative 0..255 mask (dark corners), computed once."""
        yy, xx = np.mgrid[0:self.h, 0:self.w].astype(np.float32)
        r = np.sqrt(((xx - self.w / 2) / (self.w / 2)) ** 2 + ((yy - self.h / 2) / (self.h / 2)) ** 2)
        return np.clip(255 * (1 - 0.55 * np.clip(r - 0.45, 0, None) ** 1.6), 0, 255).astype(np.uint8)

    def _vignette_i420(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mask laid out like an I420 buffer, plus the offset that keeps black at Y=16, C=128:
        out = buf*m/255 + level*(255-m)/255 — two uint8 OpenCV calls per frame."""
        import cv2

        h, w = self.h, self.w
        half = cv2.resize(mask, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        m = np.concatenate([mask.ravel(), half.ravel(), half.ravel()]).reshape(h * 3 // 2, w)
        level = np.full(m.shape, C_ZERO, np.uint16)
        level[:h] = Y_BLACK
        off = (level * (255 - m.astype(np.uint16)) // 255).astype(np.uint8)
        return m, off

    def _build_layers(self, panel: np.ndarray) -> None:
        import cv2

        shot = self.shot
        self.kb = 1 + (self.zmax - 1) * DEPTH["backdrop"]
        back = _load_rgba(shot.layers["backdrop"], f"shot {shot.shot_id}: layer backdrop")[..., :3] \
            if "backdrop" in shot.layers else panel[..., :3]
        self._back = grade_rgb(self._prescale(back, self.kb, cv2.INTER_AREA), shot.grade)
        # premultiplied RGBA sprites, cropped to their bounding box in source coordinates
        self._sprites: dict[str, tuple[float, np.ndarray, tuple[int, int]]] = {}
        keys = [k for k in shot.layers if k.startswith("char:")] + [k for k in OVERLAY_LAYERS if k in shot.layers]
        for key in keys:
            depth = DEPTH["overlay"] if key in OVERLAY_LAYERS else DEPTH["char"]
            k = 1 + (self.zmax - 1) * depth
            paths = {key: shot.layers[key]}
            if key.startswith("char:"):
                used = set(self._mouths.get(key[5:], ()))
                wanted = ["eyes_closed", "mouth_open" if used - {"rest", "mbp"} else ""]
                wanted += [f"mouth_{shape}" for shape in used if shape not in ("rest", "open")]
                for v in filter(None, wanted):
                    if f"{key}:{v}" in shot.variants:
                        paths[f"{key}:{v}"] = shot.variants[f"{key}:{v}"]
            imgs = {n: self._prescale(_load_rgba(p, f"shot {shot.shot_id}: {n}"), k, cv2.INTER_AREA)
                    for n, p in paths.items()}
            union = np.zeros(next(iter(imgs.values())).shape[:2], np.uint8)
            for img in imgs.values():
                if img.shape[:2] != union.shape:
                    raise InputError(f"shot {shot.shot_id}: layer/variant sizes differ for {key}; "
                                     "export all layers at the panel size")
                np.maximum(union, img[..., 3], out=union)
            x, y, bw, bh = cv2.boundingRect(union)
            if bw == 0:
                continue
            for name, img in imgs.items():
                crop = img[y:y + bh, x:x + bw]
                rgb = grade_rgb(np.ascontiguousarray(crop[..., :3]), shot.grade)
                a = crop[..., 3:4].astype(np.uint16)
                prem = np.concatenate([(rgb.astype(np.uint16) * a // 255).astype(np.uint8), crop[..., 3:4]], 2)
                self._sprites[name] = (k, np.ascontiguousarray(prem), (x, y))

    # ---------------------------------------------------------------- camera path

    def camera(self, t: float) -> tuple[float, float, float]:
        """(zoom, dx, dy): zoom relative to a covering fit, centre offset in output pixels."""
        shot = self.shot
        e = ease(t / self.duration, shot.ease)
        mv = shot.camera_move
        pw, ph = self.pw * self.cover, self.ph * self.cover
        if mv == "push-in":
            return 1 + (PUSH_ZOOM - 1) * e, 0.0, 0.0
        if mv == "pull-out":
            return PUSH_ZOOM - (PUSH_ZOOM - 1) * e, 0.0, 0.0
        if mv in ("pan", "tilt"):
            sign = -1.0 if shot.seed % 2 else 1.0
            if mv == "pan":
                margin = (pw - self.w / PAN_ZOOM) / 2
                return PAN_ZOOM, sign * 0.9 * margin * (2 * e - 1), 0.0
            margin = (ph - self.h / PAN_ZOOM) / 2
            return PAN_ZOOM, 0.0, sign * 0.9 * margin * (2 * e - 1)
        if mv == "shake":
            rng = np.random.default_rng(shot.seed & 0xFFFFFFFF)
            f1, f2, p1, p2, p3, p4 = rng.uniform([6, 9, 0, 0, 0, 0], [9, 13, 6.3, 6.3, 6.3, 6.3])
            amp = 0.6 * (self.w - self.w / SHAKE_ZOOM) / 2
            dx = amp * (math.sin(2 * math.pi * f1 * t + p1) + 0.5 * math.sin(2 * math.pi * f2 * t + p2)) / 1.5
            dy = amp * (math.sin(2 * math.pi * f2 * t + p3) + 0.5 * math.sin(2 * math.pi * f1 * t + p4)) / 1.5
            return SHAKE_ZOOM, dx, dy
        return 1.0, 0.0, 0.0

    def _matrix(self, t: float, k: float, depth: float) -> np.ndarray:
        """src (pre-scaled by k) -> output pixels; dst = z*(p - centre) + frame centre."""
        z, dx, dy = self.camera(t)
        if self.shot.camera_move != "shake":
            z, dx, dy = 1 + (z - 1) * depth, dx * depth, dy * depth
        a = z / k
        cx = self.pw * self.cover / 2 + dx
        cy = self.ph * self.cover / 2 + dy
        return np.array([[a, 0, self.w / 2 - z * cx], [0, a, self.h / 2 - z * cy]], np.float32)

    # ---------------------------------------------------------------- limited animation

    def eyes_closed(self, char_id: str, t: float) -> bool:
        return any(a <= t < b for a, b in self.blinks.get(char_id, ()))

    def mouth_shape(self, char_id: str, t: float) -> str:
        """The mouth of ``char_id`` at t: a `tools.lipsync.SHAPES` name, or "open" (a loudness flap)."""
        frames = self._mouths.get(char_id)
        if not frames:
            return "rest"
        return frames[min(len(frames) - 1, max(0, int(t * self.fps + 1e-6)))]

    def mouth_open(self, char_id: str, t: float) -> bool:
        return self.mouth_shape(char_id, t) not in ("rest", "mbp")

    def sprite_for(self, key: str, t: float) -> str:
        """Which image stands for layer ``key`` at time t (a blink wins over the mouth; a panel
        drawn without a shape's variant shows its open mouth, or the closed one for M/B/P)."""
        if not key.startswith("char:"):
            return key
        cid = key[5:]
        if self.eyes_closed(cid, t) and f"{key}:eyes_closed" in self._sprites:
            return f"{key}:eyes_closed"
        shape = self.mouth_shape(cid, t)
        if shape in ("rest", "mbp") and f"{key}:mouth_{shape}" not in self._sprites:
            return key
        for name in (f"{key}:mouth_{shape}", f"{key}:mouth_open"):
            if name in self._sprites:
                return name
        return key

    # ---------------------------------------------------------------- frames

    def frame_i420(self, t: float, out: np.ndarray | None = None) -> np.ndarray:
        """The (H*3/2, W) uint8 I420 frame at shot time t (seconds), into ``out`` when given."""
        import cv2

        h, w = self.h, self.w
        if out is None:
            out = np.empty((h * 3 // 2, w), np.uint8)
        if not self.layered:
            sy, su, sv = self._src_planes
            oy, ou, ov = i420_planes(out, h, w)
            m = self._matrix(t, self.zmax, 1.0)
            if not self.moving and (self.src_w, self.src_h) == (w, h):
                out[:] = self._src
            else:
                mc = m.copy()
                mc[:, 2] = (m[:, 2] + 0.5 * m[0, 0] - 0.5) / 2
                for idx, (s, o, mm) in enumerate(((sy, oy, m), (su, ou, mc), (sv, ov, mc))):
                    if not self._scaled_crop(idx, s, mm, o):
                        cv2.warpAffine(s, mm, (o.shape[1], o.shape[0]), dst=o, flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_REPLICATE)
        else:
            cv2.cvtColor(self._composite_rgb(t), cv2.COLOR_RGB2YUV_I420, dst=out)
        self._post(out, t)
        return out

    def _scaled_crop(self, idx: int, src: np.ndarray, m: np.ndarray, dst: np.ndarray) -> bool:
        """The camera's scale + translate as a crop and one ``cv2.resize`` (about 3x cheaper than
        ``warpAffine`` on these planes). Subpixel accuracy comes from copies of the source pre-shifted
        by half pixels, so the origin is off by at most a quarter pixel (no stair-stepped pans).
        False when the view leaves the source (``warpAffine`` then replicates the border)."""
        import cv2

        a = float(m[0, 0])
        if a <= 0 or abs(float(m[1, 1]) - a) > 1e-6 or m[0, 1] or m[1, 0]:
            return False
        h, w = dst.shape
        # src = (dst - t) / a; resize with fx = a maps dst x to src (x + 0.5)/a - 0.5 + x0
        ox = -float(m[0, 2]) / a - 0.5 / a + 0.5
        oy = -float(m[1, 2]) / a - 0.5 / a + 0.5
        qx, qy = round(ox * 2) / 2, round(oy * 2) / 2
        x0, y0 = math.floor(qx), math.floor(qy)
        fx, fy = qx - x0, qy - y0
        rw, rh = math.ceil((w + 1) / a) + 2, math.ceil((h + 1) / a) + 2
        if x0 < 0 or y0 < 0 or x0 + rw + 1 > src.shape[1] or y0 + rh + 1 > src.shape[0]:
            return False
        key = (idx, fx, fy)
        shifted = self._shifted.get(key)
        if shifted is None:
            if fx or fy:
                shift = np.array([[1, 0, -fx], [0, 1, -fy]], np.float32)
                shifted = cv2.warpAffine(src, shift, (src.shape[1], src.shape[0]), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE)
            else:
                shifted = src
            self._shifted[key] = shifted
        scaled = cv2.resize(shifted[y0:y0 + rh, x0:x0 + rw], None, fx=a, fy=a, interpolation=cv2.INTER_LINEAR)
        if scaled.shape[0] < h or scaled.shape[1] < w:
            return False
        dst[:] = scaled[:h, :w]
        return True

    def _composite_rgb(self, t: float) -> np.ndarray:
        import cv2

        h, w = self.h, self.w
        frame = cv2.warpAffine(self._back, self._matrix(t, self.kb, DEPTH["backdrop"]), (w, h),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        for key in [k for k in self._sprites if k.count(":") <= 1]:
            k, prem, (sx, sy) = self._sprites[self.sprite_for(key, t)]
            depth = DEPTH["overlay"] if key in OVERLAY_LAYERS else DEPTH["char"]
            m = self._matrix(t, k, depth)
            bh, bw = prem.shape[:2]
            corners = np.array([[sx, sy, 1], [sx + bw, sy + bh, 1]], np.float32) @ m.T
            x0, y0 = (int(max(0, math.floor(v))) for v in corners.min(0))
            x1, y1 = int(min(w, math.ceil(corners[:, 0].max()))), int(min(h, math.ceil(corners[:, 1].max())))
            if x1 <= x0 or y1 <= y0:
                continue
            mm = m.copy()
            mm[0, 2] += m[0, 0] * sx - x0
            mm[1, 2] += m[1, 1] * sy - y0
            patch = cv2.warpAffine(prem, mm, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
            inv = cv2.merge([255 - patch[..., 3]] * 3)
            roi = frame[y0:y1, x0:x1]
            cv2.multiply(roi, inv, dst=roi, scale=1 / 255)
            cv2.add(roi, np.ascontiguousarray(patch[..., :3]), dst=roi)
        return frame

    def _post(self, out: np.ndarray, t: float) -> None:
        """Per-frame mood on the I420 frame: vignette (moving camera), flicker, impact flash."""
        import cv2

        if self._post_vignette is not None:
            m, off = self._post_vignette
            cv2.multiply(out, m, dst=out, scale=1 / 255)
            cv2.add(out, off, dst=out)
        if self.shot.flicker:
            q = round(100 * self._flicker(t))
            lut = self._flicker_luts.get(q)
            if lut is None:
                x = np.arange(256, dtype=np.float32)
                lut = np.clip(Y_BLACK + (x - Y_BLACK) * q / 100, 0, 255).astype(np.uint8)
                self._flicker_luts[q] = lut
            y = out[:self.h]
            cv2.LUT(y, lut, dst=y)
        if self.shot.flash and t < FLASH_S:
            s = 0.9 * (1 - t / FLASH_S) ** 2
            white = _solid_cache(self.h, self.w, Y_WHITE)
            cv2.addWeighted(out, 1 - s, white, s, 0, dst=out)

    def _flicker(self, t: float) -> float:
        """Seeded brightness wobble around 1.0 (a light that is not quite steady)."""
        rng = np.random.default_rng((self.shot.seed + 7919) & 0xFFFFFFFF)
        f = rng.uniform(1.5, 3.5, 3)
        p = rng.uniform(0, 2 * math.pi, 3)
        v = sum(math.sin(2 * math.pi * fi * t + pi) for fi, pi in zip(f, p)) / 3
        return 1.0 + 0.08 * v

    def frame(self, t: float) -> np.ndarray:
        """RGB H×W×3 uint8 (the VideoMotion contract)."""
        return i420_to_rgb(self.frame_i420(t))


_SOLIDS: dict[tuple[int, int, int], np.ndarray] = {}


def _solid_cache(h: int, w: int, y: int) -> np.ndarray:
    key = (h, w, y)
    if key not in _SOLIDS:
        _SOLIDS[key] = solid_i420(h, w, y)
    return _SOLIDS[key]


# --------------------------------------------------------------------------- transitions


def blend_transition(kind: str, a: np.ndarray, b: np.ndarray, p: float, height: int, width: int,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Frame of a transition from I420 frame ``a`` (outgoing) to ``b`` (incoming) at progress p in
    (0, 1). Crossfade/dip use one addWeighted; slide/whip copy column ranges plane by plane."""
    import cv2

    if out is None:
        out = np.empty_like(a)
    if kind == "crossfade":
        return cv2.addWeighted(a, 1 - p, b, p, 0, dst=out)
    if kind == "dip":
        black = _solid_cache(height, width, Y_BLACK)
        if p < 0.5:
            return cv2.addWeighted(a, 1 - 2 * p, black, 2 * p, 0, dst=out)
        return cv2.addWeighted(black, 2 - 2 * p, b, 2 * p - 1, 0, dst=out)
    if kind in ("slide", "whip"):
        e = ease(p, "in_out") if kind == "slide" else ease(p, "in")
        shift = round(e * width / 2) * 2       # even, so chroma columns stay aligned
        for (pa, pb, po), sc in zip(zip(i420_planes(a, height, width), i420_planes(b, height, width),
                                        i420_planes(out, height, width)), (1, 2, 2)):
            s, wp = shift // sc, width // sc
            po[:, :wp - s] = pa[:, s:]
            po[:, wp - s:] = pb[:, :s]
        if kind == "whip":
            speed = 3 * e if e < 1 else 0
            k = int(width * 0.08 * min(1.0, speed)) // 2 * 2 + 1
            if k > 1:
                for po, sc in zip(i420_planes(out, height, width), (1, 2, 2)):
                    kk = max(1, k // sc) | 1
                    cv2.blur(po, (kk, 1), dst=po)
        return out
    out[:] = b if p >= 0.5 else a
    return out


class ClipMotion:
    """A shot played from image-to-video frames (e.g. AnimateDiff) behind the same VideoMotion
    Protocol as the camera: frame(t) picks the clip frame at ``shot.clip_fps`` and holds the last
    one; colour grade and vignette still apply. Frames are fitted to the output size once."""

    def __init__(self, shot: ShotSpec, w: int, h: int, fps: int) -> None:
        import cv2
        from PIL import Image, ImageOps


        if not shot.clip:
            raise InputError(f"shot {shot.shot_id}: ClipMotion needs clip frames")
        self.shot, self.w, self.h, self.fps = shot, w, h, fps
        self._frames: list[np.ndarray] = []
        for path in shot.clip:
            try:
                with Image.open(path) as im:
                    rgb = np.asarray(ImageOps.fit(im.convert("RGB"), (w, h), Image.Resampling.BILINEAR))
            except OSError as exc:
                raise InputError(f"shot {shot.shot_id}: clip frame {path} cannot be read ({exc})") from exc
            rgb = grade_rgb(rgb, shot.grade)
            self._frames.append(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420))

    def _index(self, t: float) -> int:
        return min(len(self._frames) - 1, max(0, int(t * self.shot.clip_fps)))

    def frame_i420(self, t: float, out: np.ndarray | None = None) -> np.ndarray:
        src = self._frames[self._index(t)]
        if out is None:
            return src.copy()
        out[:] = src
        return out

    def frame(self, t: float) -> np.ndarray:
        import cv2

        return cv2.cvtColor(self._frames[self._index(t)], cv2.COLOR_YUV2RGB_I420)
