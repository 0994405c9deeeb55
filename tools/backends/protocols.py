"""Backend contracts: one small Protocol per model role, plus the request/result types.

Tools and graph nodes receive an implementation through run context; tests hand in fakes that
implement the same Protocol. Results are files on disk (paths), never in-memory images in state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

# --------------------------------------------------------------------------- panels (issue 3)

FRAMINGS = ("establishing", "wide", "medium", "close-up", "extreme close-up")
CAMERA_MOVES = ("static", "push-in", "pull-out", "pan", "tilt", "shake")


@dataclass(frozen=True)
class CharacterInShot:
    """One character as the painter needs it: who, how they look, what they do in this shot."""

    id: str
    name: str
    look_tags: tuple[str, ...] = ()          # reusable image-prompt tags from the bible
    expression: str = "neutral"              # neutral, happy, sad, angry, surprised, scared...
    pose: str = ""
    speaking: bool = False                   # the shot's line is theirs
    reference_image: Path | None = None      # accepted reference sheet (IP-Adapter anchor)
    lora: str | None = None                  # per-character LoRA path or hub id, when configured


@dataclass(frozen=True)
class PanelRequest:
    shot_id: str
    style_tags: tuple[str, ...] = ()         # art style from the style guide
    palette: tuple[str, ...] = ()            # hex colours "#aabbcc" or colour names
    location_name: str = ""
    location_tags: tuple[str, ...] = ()
    background_image: Path | None = None     # accepted location background, when there is one
    characters: tuple[CharacterInShot, ...] = ()
    framing: str = "medium"
    angle: str = "eye level"
    camera_move: str = "static"
    lighting: str = ""
    mood: str = ""
    line_text: str = ""                      # the dialogue line this shot covers (may be empty)
    note: str = ""                           # the director's note from a rejection
    negative: str = ""                       # extra negative prompt
    width: int = 1080
    height: int = 1920
    seed: int = 0
    kind: str = "panel"                      # panel | character_sheet | background


@dataclass(frozen=True)
class PanelResult:
    image: Path                                              # the composed panel (RGB PNG)
    seed: int
    model: str                                               # backend + checkpoint, for staleness
    layers: dict[str, Path] = field(default_factory=dict)    # "backdrop", "char:<id>" -> RGBA PNG
    variants: dict[str, Path] = field(default_factory=dict)  # "char:<id>:eyes_closed" / ":mouth_open" /
    #                                                          ":mouth_<shape>" (tools.lipsync.MOUTH_VARIANTS)


@runtime_checkable
class PanelPainter(Protocol):
    name: str

    def paint(self, request: PanelRequest, out_dir: Path) -> PanelResult: ...


# --------------------------------------------------------------------------- voices (issue 4)


@dataclass(frozen=True)
class VoiceProfile:
    engine: str = "piper"          # piper | kokoro | espeak | openai
    voice: str = "en_US-joe-medium"
    blend: str = ""                # kokoro: a second voice mixed into ``voice``'s style, "jm_kumo" or "jm_kumo:0.3"
    rate: float = 1.0              # 1.0 = engine default speed; 1.2 = 20% faster
    pitch_semitones: float = 0.0   # duration-preserving pitch shift
    energy: float = 1.0            # gain / expressiveness
    noise: float = 0.667           # piper noise_scale (variation)
    instructions: str = ""         # for engines that take them (OpenAI gpt-4o-mini-tts)


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    language: str = "en"
    profile: VoiceProfile = VoiceProfile()
    emotion: str = "neutral"       # neutral, angry, whisper, shout, sad, happy, scared...
    seed: int = 0


@runtime_checkable
class VoiceSynth(Protocol):
    name: str

    def synthesize(self, request: SpeechRequest, out: Path) -> Path:
        """Write a WAV of the spoken text to ``out`` and return it (any rate; tools normalise).

        A synth that knows when each phoneme is spoken also writes the mouth track beside it
        (`tools.lipsync.write_track`: ``out.visemes.json``); one that does not writes nothing
        there, and the take's mouth follows its loudness instead."""
        ...
