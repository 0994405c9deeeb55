"""What an episode render is made of: frozen, hashable descriptions with absolute paths.

Timing model (used by video, audio, captions, SRT/VTT and OTIO alike):

* Every duration is snapped to the frame grid first (``round(seconds * fps)`` frames), so all outputs
  agree to the frame.
* ``transition_in`` of shot *i* (anything but ``"cut"``) overlaps the **end of shot i-1** by
  ``transition_s``: shot *i* starts ``transition_s`` before shot *i-1* ends. The first shot's
  ``transition_in`` is ignored (there is nothing to overlap).
* Episode duration = sum(durations) - sum(overlaps).
* Caption and take times are relative to their shot's start, so a line placed at 0.0 in a shot that
  crossfades in starts at the beginning of the crossfade.
* A piece of a shot (``ShotSpec.is_piece``: a cold open's pick) lasts ``duration`` and shows the
  whole shot's time ``offset_s`` … ``offset_s + duration``; its caption and take times stay on the
  whole shot's clock (``source_duration`` long), and its takes are heard only inside the piece.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from memory.errors import InputError

CAMERA_MOVES = ("static", "push-in", "pull-out", "pan", "tilt", "shake")
TRANSITIONS = ("cut", "crossfade", "dip", "slide", "whip")
GRADES = ("none", "warm", "cool", "desaturated", "night")
EASES = ("in_out", "linear", "in", "out")
#: layers drawn over the characters, in this order: guides (storyboard marks), the speech bubble, and
#: "overlay" (an older painter's guides + bubble in one layer)
OVERLAY_LAYERS = ("guides", "bubble", "overlay")


@dataclass(frozen=True)
class CaptionCue:
    text: str
    start: float          # seconds from the shot start
    end: float
    speaker: str = ""


@dataclass(frozen=True)
class TakeCue:
    wav: Path             # 48 kHz mono WAV (other rates are resampled)
    start: float          # seconds from the shot start
    visemes: Path | None = None   # its mouth track (tools.lipsync); None: the mouth flaps on loudness
    speaker: str = ""     # char id whose mouth it moves ("": every speaker's; a narrator's name: nobody's)


@dataclass(frozen=True)
class ShotSpec:
    shot_id: str
    panel: Path
    duration: float
    camera_move: str = "static"                               # see CAMERA_MOVES
    layers: dict[str, Path] = field(default_factory=dict)     # "backdrop", "char:<id>", overlays (OVERLAY_LAYERS)
    variants: dict[str, Path] = field(default_factory=dict)   # "char:<id>:eyes_closed" / ":mouth_open" / ":mouth_<shape>"
    speakers: tuple[str, ...] = ()                            # char ids whose mouths move with the takes
    transition_in: str = "cut"                                # see TRANSITIONS
    transition_s: float = 0.5
    grade: str = "none"                                       # see GRADES
    vignette: bool = False
    flicker: bool = False
    flash: bool = False                                       # impact flash at the shot start
    captions: tuple[CaptionCue, ...] = ()                     # the shot's lines: SRT/VTT, and burned in
    burn_captions: bool = True                                # False: the panel shows the line (a bubble)
    takes: tuple[TakeCue, ...] = ()
    seed: int = 0
    ease: str = "in_out"
    clip: tuple[Path, ...] = ()                               # image-to-video frames: play these instead
    clip_fps: float = 8.0                                     # of moving the camera over the panel
    offset_s: float = 0.0                                     # a piece of a longer shot (a cold open's
    source_duration: float = 0.0                              # pick): it shows source time [offset_s,
                                                              # offset_s + duration) of a shot lasting
                                                              # source_duration (0: not a piece)
    cold_open: bool = False                                   # part of the "previously on" before the episode

    @property
    def is_piece(self) -> bool:
        return self.source_duration > 0

    def source(self) -> ShotSpec:
        """The whole shot a piece is cut from (itself for a whole shot): motion, blinks, mouths and
        captions run on its clock, so a piece shows exactly those frames of the episode before."""
        from dataclasses import replace

        return replace(self, duration=self.source_duration, offset_s=0.0, source_duration=0.0) \
            if self.is_piece else self

    def __hash__(self) -> int:  # dict fields are not hashable; identity of content is the shot id
        return hash((self.shot_id, self.panel, self.duration))


@dataclass(frozen=True)
class EpisodeSpec:
    shots: tuple[ShotSpec, ...]
    fps: int = 24
    width: int = 1080
    height: int = 1920
    music: Path | None = None
    music_gain_db: float = -18.0
    duck_db: float = -10.0
    target_lufs: float = -14.0
    true_peak_db: float = -1.0
    font: Path | None = None
    language: str = "en"
    preset: str = "veryfast"
    crf: int = 20
    title: str = ""


@dataclass(frozen=True)
class ShotFrames:
    """One shot on the frame grid: ``start`` frame, ``length`` frames, ``overlap_in`` frames shared
    with the previous shot (0 for a cut) and ``overlap_out`` shared with the next one."""

    index: int
    start: int
    length: int
    overlap_in: int
    overlap_out: int

    @property
    def body(self) -> tuple[int, int]:
        """Absolute frame range [a, b) that shows this shot alone."""
        return self.start + self.overlap_in, self.start + self.length - self.overlap_out


def validate_spec(spec: EpisodeSpec) -> None:
    """Reject a spec that cannot be rendered, naming the shot and value, before any work starts."""
    if not spec.shots:
        raise InputError("the episode has no shots; add at least one approved shot before rendering")
    if spec.fps not in (24, 25, 30, 60):
        raise InputError(f"fps {spec.fps} is not supported; use 24 or 30")
    if spec.width % 2 or spec.height % 2 or spec.width < 16 or spec.height < 16:
        raise InputError(f"frame size {spec.width}x{spec.height} must be even and at least 16 px")
    seen: set[str] = set()
    for shot in spec.shots:
        sid = shot.shot_id
        if sid in seen:
            raise InputError(f"shot id {sid!r} appears twice; shot ids must be unique in an episode")
        seen.add(sid)
        if shot.camera_move not in CAMERA_MOVES:
            raise InputError(f"shot {sid}: camera_move {shot.camera_move!r} is not one of {CAMERA_MOVES}")
        if shot.transition_in not in TRANSITIONS:
            raise InputError(f"shot {sid}: transition_in {shot.transition_in!r} is not one of {TRANSITIONS}")
        if shot.grade not in GRADES:
            raise InputError(f"shot {sid}: grade {shot.grade!r} is not one of {GRADES}")
        if shot.ease not in EASES:
            raise InputError(f"shot {sid}: ease {shot.ease!r} is not one of {EASES}")
        if not shot.duration > 0 or round(shot.duration * spec.fps) < 1:
            raise InputError(f"shot {sid}: duration {shot.duration!r} s is shorter than one frame")
        if shot.is_piece and not (0 <= shot.offset_s and shot.offset_s + shot.duration <= shot.source_duration + 1e-6):
            raise InputError(f"shot {sid}: the piece {shot.offset_s:.2f}–{shot.offset_s + shot.duration:.2f} s is "
                             f"outside its shot of {shot.source_duration:.2f} s; pick times within the shot")
        paths = [("panel", shot.panel)]
        paths += [(f"layer {k}", p) for k, p in shot.layers.items()]
        paths += [(f"variant {k}", p) for k, p in shot.variants.items()]
        paths += [("take", t.wav) for t in shot.takes]
        paths += [("mouth track", t.visemes) for t in shot.takes if t.visemes is not None]
        for what, path in paths:
            if not Path(path).is_file():
                raise InputError(f"shot {sid}: {what} file {path} does not exist; redraw or re-voice it")
        for take in shot.takes:
            if _audio_frames(take.wav) == 0:
                raise InputError(f"shot {sid}: take {take.wav} has zero length; re-voice the line")
        for cue in shot.captions:
            if cue.end <= cue.start:
                raise InputError(f"shot {sid}: caption {cue.text!r} ends ({cue.end}) before it starts")
    if spec.music is not None and not Path(spec.music).is_file():
        raise InputError(f"music file {spec.music} does not exist; pick another bed or set music=None")
    if spec.font is not None and not Path(spec.font).is_file():
        raise InputError(f"caption font {spec.font} does not exist; set font=None to use the default")


def _audio_frames(path: Path) -> int:
    import soundfile as sf

    try:
        return sf.info(str(path)).frames
    except Exception as exc:  # libsndfile's error types vary by version
        raise InputError(f"take {path} is not a readable WAV ({exc}); re-voice the line") from exc


def frame_plan(spec: EpisodeSpec) -> list[ShotFrames]:
    """Place every shot on the frame grid (see the module docstring for the overlap rule)."""
    fps = spec.fps
    lengths = [max(1, round(s.duration * fps)) for s in spec.shots]
    overlaps = [0]
    for i in range(1, len(spec.shots)):
        shot = spec.shots[i]
        if shot.transition_in == "cut" or shot.transition_s <= 0:
            overlaps.append(0)
            continue
        o = round(shot.transition_s * fps)
        # an overlap can use at most half of either neighbour, so in- and out-transitions never meet
        o = max(0, min(o, lengths[i - 1] // 2, lengths[i] // 2))
        overlaps.append(o)
    overlaps.append(0)
    plan, start = [], 0
    for i, n in enumerate(lengths):
        start -= overlaps[i]
        plan.append(ShotFrames(i, start, n, overlaps[i], overlaps[i + 1]))
        start += n
    return plan


def total_frames(plan: list[ShotFrames]) -> int:
    last = plan[-1]
    return last.start + last.length


def timeline(spec: EpisodeSpec) -> list[tuple[str, float, float]]:
    """``(shot_id, start_s, duration_s)`` per shot, on the frame grid; shots overlap by their
    incoming transition, so the episode lasts sum(durations) - sum(overlaps)."""
    fps = spec.fps
    return [(spec.shots[f.index].shot_id, f.start / fps, f.length / fps) for f in frame_plan(spec)]


def episode_duration(spec: EpisodeSpec) -> float:
    return total_frames(frame_plan(spec)) / spec.fps
