"""Lip sync from phonemes: a synthesiser's phoneme timings become a track of mouth shapes.

A track is a JSON list of ``[start_s, end_s, shape]`` covering the take from 0 to its end, stored
beside the take's WAV (`track_path`: ``take.wav`` -> ``take.visemes.json``), independent of the
video's frame rate. The render samples it per frame (`shapes_per_frame`); takes without a track
(uploads, OpenAI speech) fall back to loudness flaps (`tools.render.motion.mouth_schedule`).

Shapes (`SHAPES`) are the classic animation mouth chart reduced to seven: ``rest`` (closed, the
character's own expression), ``mbp`` (lips pressed), ``fv`` (lower lip under the teeth),
``open_small``, ``open_wide``, ``round`` (O/U/W) and ``ei`` (spread, E/I).
"""
from __future__ import annotations

import bisect
import json
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memory.errors import InputError

if TYPE_CHECKING:
    import numpy as np

SHAPES = ("rest", "mbp", "fv", "open_small", "open_wide", "round", "ei")
#: The shapes a painter draws as variants (``rest`` is the character layer itself).
MOUTH_VARIANTS = tuple(f"mouth_{shape}" for shape in SHAPES if shape != "rest")
LIPSYNC_PHONEMES = "phonemes"
LIPSYNC_ENVELOPE = "envelope"
#: A word gap (space) this long or longer closes the mouth; shorter ones keep the previous shape.
PAUSE_S = 0.12
#: Shapes that must show for at least one frame even when shorter than a frame (a closure you
#: never see reads as a mumble).
MUST_SHOW = ("mbp", "fv")
#: Audio quieter than this share of the take's loudest 10 ms, for SILENCE_MIN_S, is a closed mouth.
SILENCE_FLOOR = 0.03
SILENCE_MIN_S = 0.08

_SHAPE_OF: dict[str, str] = {}
for _chars, _shape in (
    ("mpbɱ", "mbp"),
    ("fvɸβ", "fv"),
    ("aɑæɶ", "open_wide"),
    ("oɔuʊwɒɵøyʏœɞʉɯʷʃʒ", "round"),
    ("eɛiɪɨjɘ", "ei"),
    ("əɐʌɜɚɝɹrɾlnŋɲtdszθðkgɡxhɦçʔʝɣχʁɬɫʀʎʑɕʂʐ", "open_small"),
):
    for _ch in _chars:
        _SHAPE_OF[_ch] = _shape
#: Marks that belong to the phoneme after them (espeak puts stress before the vowel).
_TO_NEXT = set("ˈˌ")
#: Marks that lengthen or colour the phoneme before them.
_TO_PREVIOUS = set("ːˑʲʰ˞")
_PAUSES = set(".,;:!?¡¿—…\"'()[]^$_-")


def shape_for_phoneme(phoneme: str) -> str | None:
    """The mouth shape of one IPA phoneme (first letter decides: ``tʃ`` -> ``open_small``).

    ``"rest"`` for pauses and punctuation; ``None`` for marks that borrow a neighbour's shape
    (stress, length, a word gap) and for anything unknown to the chart.
    """
    text = unicodedata.normalize("NFD", phoneme or "")
    for ch in text:
        if unicodedata.combining(ch):
            continue
        if ch in _PAUSES:
            return "rest"
        if ch in _SHAPE_OF:
            return _SHAPE_OF[ch]
        if ch in _TO_NEXT or ch in _TO_PREVIOUS or ch.isspace():
            return None
    return None


def track_from_durations(phonemes: Sequence[str], seconds: Sequence[float], *, offset: float = 0.0,
                         total: float | None = None) -> list[list]:
    """A mouth track from phonemes and how long each one lasts (in order, seconds).

    ``offset`` is where the first phoneme starts in the take (negative when the take was trimmed
    after synthesis: what falls before 0 is dropped); ``total`` the take's length (the track is
    padded with ``rest`` to it, or cut at it). Stress marks take the shape of the next phoneme, length
    marks and short word gaps the previous one, long gaps and punctuation ``rest``.
    """
    if len(phonemes) != len(seconds):
        raise InputError(f"{len(phonemes)} phonemes but {len(seconds)} durations; the synthesiser's "
                         "timings do not match its phonemes")
    shapes: list[str | None] = []
    for phoneme, duration in zip(phonemes, seconds):
        shape = shape_for_phoneme(phoneme)
        if shape is None and phoneme.strip() == "" and duration >= PAUSE_S:
            shape = "rest"
        shapes.append(shape)
    # resolve borrowed shapes: stress -> next, everything else -> previous (or next at the start)
    for i, phoneme in enumerate(phonemes):
        if shapes[i] is not None:
            continue
        following = next((s for s in shapes[i + 1:] if s is not None), None)
        previous = next((s for s in reversed(shapes[:i]) if s is not None), None)
        if any(ch in _TO_NEXT for ch in phoneme):
            shapes[i] = following or previous or "rest"
        else:
            shapes[i] = previous or following or "rest"
    track: list[list] = []
    t = float(offset)
    if t > 0:
        track.append([0.0, t, "rest"])
    end = float("inf") if total is None else float(total)
    for shape, duration in zip(shapes, seconds):
        a, b = max(0.0, t), min(end, t + float(duration))
        if b > a:
            _append(track, a, b, str(shape))
        t += float(duration)
    if total is not None and total > max(t, 0.0):
        _append(track, max(t, 0.0), float(total), "rest")
    return [[round(a, 4), round(b, 4), s] for a, b, s in track]


def gate_silence(track: list[list], samples: np.ndarray, rate: int, *, floor: float = SILENCE_FLOOR,
                 min_s: float = SILENCE_MIN_S) -> list[list]:
    """``track`` with ``rest`` wherever the audio is silent for ``min_s`` or longer.

    Duration predictors stretch a line's last phoneme into the fade-out (Kokoro holds a final "iː"
    half a second after the sound stops): the audio decides where the mouth is at rest. A closure
    (``mbp``) stays, since a held stop is silent with the lips shut.
    """
    import numpy as np

    audio = np.asarray(samples, dtype=np.float64)
    hop = max(1, rate // 100)                        # 10 ms
    n = len(audio) // hop
    if n == 0 or not track:
        return track
    rms = np.sqrt(np.mean(audio[:n * hop].reshape(n, hop) ** 2, axis=1))
    quiet = rms < floor * max(float(rms.max()), 1e-9)
    runs, k = [], 0
    while k < n:
        if quiet[k]:
            j = k
            while j < n and quiet[j]:
                j += 1
            if (j - k) * hop / rate >= min_s:
                runs.append((k * hop / rate, (j * hop / rate) if j < n else float(track[-1][1])))
            k = j
        else:
            k += 1
    out: list[list] = []
    for a, b, shape in track:
        pieces = [(float(a), float(b))]
        if shape != "mbp":
            for q0, q1 in runs:
                nxt = []
                for p0, p1 in pieces:
                    if q1 <= p0 or q0 >= p1:
                        nxt.append((p0, p1))
                        continue
                    if q0 > p0:
                        nxt.append((p0, q0))
                    if q1 < p1:
                        nxt.append((q1, p1))
                pieces = nxt
        # rebuild in time order: the kept pieces with this shape, the gaps between them rest
        t = float(a)
        for p0, p1 in pieces:
            if p0 > t:
                _append(out, t, p0, "rest")
            _append(out, p0, p1, str(shape))
            t = p1
        if t < float(b):
            _append(out, t, float(b), "rest")
    return [[round(x, 4), round(y, 4), s] for x, y, s in out]


def _append(track: list[list], start: float, end: float, shape: str) -> None:
    if track and track[-1][2] == shape and abs(track[-1][1] - start) < 1e-6:
        track[-1][1] = end
    else:
        track.append([start, end, shape])


def track_path(wav: Path) -> Path:
    """Where the mouth track of ``wav`` lives: ``take.wav`` -> ``take.visemes.json``."""
    wav = Path(wav)
    return wav.with_name(f"{wav.stem}.visemes.json")


def write_track(wav: Path, track: list[list]) -> Path:
    """Store ``track`` beside ``wav`` (atomically) and return its path."""
    validate_track(track, str(track_path(wav)))
    out = track_path(wav)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(track, separators=(",", ":")), encoding="utf-8")
    tmp.replace(out)
    return out


def validate_track(track: object, where: str) -> list[list]:
    """The track, checked: a list of increasing ``[start_s, end_s, shape]`` with known shapes."""
    if not isinstance(track, list):
        raise InputError(f"mouth track {where} is {type(track).__name__}, not a list of [start_s, end_s, shape]")
    last = 0.0
    for i, item in enumerate(track):
        if (not isinstance(item, (list, tuple)) or len(item) != 3 or not all(isinstance(v, (int, float))
                                                                            for v in item[:2])):
            raise InputError(f"mouth track {where}: entry {i} is {item!r}, not [start_s, end_s, shape]")
        start, end, shape = float(item[0]), float(item[1]), item[2]
        if shape not in SHAPES:
            raise InputError(f"mouth track {where}: entry {i} has shape {shape!r}; use one of {', '.join(SHAPES)}")
        if end < start or start < last - 1e-3:
            raise InputError(f"mouth track {where}: entry {i} ({start}-{end} s) is out of order; re-voice the line")
        last = end
    return [list(item) for item in track]


def read_track(path: Path) -> list[list]:
    """The track stored at ``path`` (a ``.visemes.json``), checked."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"mouth track {path} is unreadable ({exc}); re-voice the line or delete the file") from exc
    return validate_track(data, str(path))


def track_for(wav: Path) -> list[list] | None:
    """The track stored beside ``wav``, or None when the take has none (envelope flaps)."""
    path = track_path(wav)
    return read_track(path) if path.is_file() else None


def shape_at(track: Sequence[Sequence], t: float) -> str:
    """The shape at ``t`` seconds (``rest`` outside the track)."""
    starts = [float(item[0]) for item in track]
    i = bisect.bisect_right(starts, t) - 1
    if i < 0 or t >= float(track[i][1]):
        return "rest"
    return str(track[i][2])


def shapes_per_frame(tracks: Iterable[tuple[float, Sequence[Sequence]]], n_frames: int, fps: int) -> list[str]:
    """The shape each frame shows, for tracks placed at ``(start_s, track)`` in a shot.

    A frame shows the shape that covers most of it (speech beats ``rest`` where tracks overlap);
    a bilabial or F/V shorter than a frame still takes the frame it overlaps most, so every
    closure is seen.
    """
    if fps <= 0:
        raise InputError(f"fps must be a positive number of frames per second, got {fps}")
    cover = [dict.fromkeys(SHAPES, 0.0) for _ in range(max(0, n_frames))]
    segments: list[tuple[float, float, str]] = []
    for start, track in tracks:
        for a, b, shape in track:
            segments.append((start + float(a), start + float(b), str(shape)))
    for a, b, shape in segments:
        first, last = max(0, int(a * fps)), min(n_frames - 1, int(b * fps - 1e-9))
        for k in range(first, last + 1):
            overlap = min(b, (k + 1) / fps) - max(a, k / fps)
            if overlap > 0:
                cover[k][shape] += overlap
    frames = []
    for weights in cover:
        speech = {s: w for s, w in weights.items() if s != "rest" and w > 0}
        frames.append(max(speech, key=speech.get) if speech and sum(speech.values()) >= weights["rest"]
                      else "rest")
    for a, b, shape in segments:
        if shape not in MUST_SHOW or b <= a:
            continue
        first, last = max(0, int(a * fps)), min(n_frames - 1, int(b * fps - 1e-9))
        if first > last or any(frames[k] == shape for k in range(first, last + 1)):
            continue
        best = max(range(first, last + 1), key=lambda k: min(b, (k + 1) / fps) - max(a, k / fps))
        frames[best] = shape
    return frames
