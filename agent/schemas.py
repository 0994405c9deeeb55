"""What the director agent proposes, as pydantic models.

Model output is untrusted: every proposal is parsed and validated against one of these models.
Length limits bound what a small model can ramble, and they become JSON-schema constraints that a
grammar-constrained server (llama.cpp) enforces while generating.

`proposal_model(kind, cast=..., places=...)` narrows free-text fields to the names in the accepted
canon (JSON-schema enums), so that a scene cannot name a speaker or a place the bible lacks.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_serializer

from tools.speech_text import speakable

Short = Field(min_length=1, max_length=80)


class _Proposal(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


def palette_colour(value: str) -> str:
    """One palette entry as the painter will read it: a hex code or colour name, kept as written,
    or the colour word found in a phrase ('deep ocean blue' -> 'blue'); ValueError naming the
    style card otherwise. Uses the painters' own colour parser, so what passes here paints."""
    from memory.errors import InputError
    from tools.backends._draw import find_color_word, parse_color  # PIL: only when validating

    text = str(value).strip().strip("'\"")
    try:
        parse_color(text)
        return text
    except InputError:
        pass
    rgb = find_color_word(text)
    if rgb is not None:
        return "#{:02x}{:02x}{:02x}".format(*rgb)
    raise ValueError(f"palette colour {text!r} is not a hex code or colour name; fix the palette on the "
                     "style card with e.g. '#3a4f8c' or 'navy'")


def split_words_list(value: Any) -> Any:
    """A list field written as one string ('navy, crimson and cream') becomes a list."""
    if isinstance(value, str):
        return [p.strip() for p in re.split(r",|;|/|\band\b|\n", value) if p.strip()]
    return value


class SeriesProposal(_Proposal):
    """Logline and style guide: committed as one `series` record and one `style` record."""

    title: str = Field(min_length=1, max_length=60)
    logline: str = Field(min_length=1, max_length=300)
    art_style: str = Field(min_length=1, max_length=160)
    palette: list[str] = Field(min_length=2, max_length=6)
    tone: str = Field(min_length=1, max_length=120)
    target_episode_seconds: int = Field(default=60, ge=15, le=300)

    @field_validator("palette", mode="before")
    @classmethod
    def _palette_as_list(cls, value: Any) -> Any:
        return split_words_list(value)

    @field_validator("palette")
    @classmethod
    def _palette_paints(cls, value: list[str]) -> list[str]:
        """Validated where the palette is decided (the style card), not first by the background
        painter, where no redo could fix it."""
        return [palette_colour(v) for v in value]


def proper_name(value: Any) -> Any:
    """A name as canon keeps it (a character, place or prop): surrounding quotes and spaces gone,
    inner double quotes as single ones, markdown marks (``**``, ``_``, ``#``) and stray quotes or
    commas at the edges gone, no backslashes or control characters (they end up in the
    enum grammar of a constrained server, where llama.cpp cannot take them); ValueError when no
    letter or digit is left."""
    if not isinstance(value, str):
        return value
    text = " ".join(re.sub(r"[\x00-\x1f\x7f\\]+", " ", value).split())
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":   # "Ren", 'Ren'
        text = text[1:-1].strip()
    text = text.replace('"', "'")
    text = re.sub(r"(?<!\w)'(?!\w)", "", speakable(text))   # markdown marks gone, then a quote left alone
    text = speakable(text).strip(" ,;:-")                      # the spaces that quote left, and edge commas
    if not re.search(r"\w", text):
        raise ValueError(f"the name {value!r} has no letters; give it a real name")
    return text


def grammar_safe(names: list[str]) -> list[str]:
    """The names an enum may list for a grammar-constrained server: each once, with a letter or
    digit and no double quote, backslash or control character (canon written before `proper_name`
    may hold such junk; left out, it cannot crash the server)."""
    return [n for n in dict.fromkeys(names)
            if re.search(r"\w", n) and not re.search(r'["\\\x00-\x1f\x7f]', n)]


class NewCharacterProposal(_Proposal):
    """A character as the model drafts a new one (look variants come later, by revision or edit)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, title="CharacterProposal")

    name: str = Field(min_length=1, max_length=40)
    role: str = Field(min_length=1, max_length=60)
    age: str = Field(default="", max_length=30)
    personality: str = Field(min_length=1, max_length=240)
    look_tags: list[str] = Field(min_length=2, max_length=10)
    voice_notes: str = Field(default="", max_length=160)

    _name = field_validator("name", mode="before")(classmethod(lambda cls, v: proper_name(v)))


class CharacterProposal(NewCharacterProposal):
    #: look variants valid from an episode on (outfit, hair, injury, tags): memory.looks
    looks: list[LookVariant] = Field(default_factory=list, max_length=12)

    @field_validator("looks", mode="before")
    @classmethod
    def _drop_empty_variants(cls, value: Any) -> Any:
        """An empty row of the edit form (no outfit, hair, injury or tags) is no variant."""
        if isinstance(value, list):
            return [v for v in value if not isinstance(v, dict)
                    or any(v.get(k) for k in ("outfit", "hair", "injury", "tags"))]
        return value

    @model_serializer(mode="wrap")
    def _no_empty_looks(self, handler: Any) -> Any:
        """A character without variants stores no `looks` key (records stay as they were)."""
        data = handler(self)
        if isinstance(data, dict) and not data.get("looks"):
            data.pop("looks", None)
        return data


class LookVariant(_Proposal):
    """A character's look from `from_episode` on (until `until_episode`, when set): memory.looks."""

    from_episode: int = Field(ge=1, le=999)
    until_episode: int | None = Field(default=None, ge=1, le=999)
    outfit: str = Field(default="", max_length=120)
    hair: str = Field(default="", max_length=80)
    injury: str = Field(default="", max_length=80)
    tags: list[str] = Field(default_factory=list, max_length=8)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_as_list(cls, value: Any) -> Any:
        return split_words_list(value) if value is not None else []

    @field_validator("until_episode")
    @classmethod
    def _until_after_start(cls, value: int | None, info: Any) -> int | None:
        start = info.data.get("from_episode")
        if value is not None and isinstance(start, int) and value < start:
            raise ValueError(f"until_episode {value} is before from_episode {start}; use {start} or later, or null")
        return value


class LocationProposal(_Proposal):
    name: str = Field(min_length=1, max_length=60)
    description: str = Field(min_length=1, max_length=240)
    look_tags: list[str] = Field(min_length=1, max_length=8)

    _name = field_validator("name", mode="before")(classmethod(lambda cls, v: proper_name(v)))


class PropProposal(_Proposal):
    name: str = Field(min_length=1, max_length=60)
    description: str = Field(min_length=1, max_length=240)
    owner: str = Field(default="", max_length=40)
    look_tags: list[str] = Field(default_factory=list, max_length=8)

    _name = field_validator("name", mode="before")(classmethod(lambda cls, v: proper_name(v)))


class EpisodeLogline(_Proposal):
    number: int = Field(ge=1, le=100)
    title: str = Field(min_length=1, max_length=60)
    logline: str = Field(min_length=1, max_length=240)


class OutlineProposal(_Proposal):
    episodes: list[EpisodeLogline] = Field(min_length=1, max_length=12)


BEAT_KINDS = ("hook", "escalation", "twist", "cliffhanger")


class Beat(_Proposal):
    kind: Literal["hook", "escalation", "twist", "cliffhanger"]
    summary: str = Field(min_length=1, max_length=200)


class BeatsProposal(_Proposal):
    episode: int = Field(ge=1, le=100)
    beats: list[Beat] = Field(min_length=4, max_length=8)


EMOTIONS = ("neutral", "happy", "sad", "angry", "scared", "surprised", "whisper", "shout", "determined")


class DialogueLine(_Proposal):
    speaker: str = Field(min_length=1, max_length=40)
    line: str = Field(min_length=1, max_length=200)
    emotion: str = Field(default="neutral", max_length=20)

    @field_validator("line")
    @classmethod
    def _words(cls, value: str) -> str:
        """A line is something said: "4", "..." or a colour code like "3a84d0" from a small model is
        not dialogue. A word is two letters in a row, or one CJK character."""
        if not re.search(r"[^\W\d_]{2,}|[\u2e80-\u9fff\uac00-\ud7af]", value):
            raise ValueError(f"line {value!r} has no words; write what the character says")
        return value


class SceneProposal(_Proposal):
    episode: int = Field(ge=1, le=100)
    number: int = Field(ge=1, le=50)
    title: str = Field(min_length=1, max_length=60)
    location: str = Field(min_length=1, max_length=60)
    characters: list[str] = Field(min_length=1, max_length=6)
    action: str = Field(min_length=1, max_length=400)
    lines: list[DialogueLine] = Field(min_length=1, max_length=8)


PROPOSAL_MODELS: dict[str, type[_Proposal]] = {
    "series": SeriesProposal,
    "character": CharacterProposal,
    "location": LocationProposal,
    "prop": PropProposal,
    "outline": OutlineProposal,
    "beats": BeatsProposal,
    "scene": SceneProposal,
}

PROPOSAL_TITLES = {
    "series": "Logline and style guide",
    "character": "Character",
    "location": "Location",
    "prop": "Prop",
    "outline": "Season outline",
    "beats": "Episode beats",
    "scene": "Scene",
}


def proposal_model(kind: str, *, cast: list[str] | None = None, places: list[str] | None = None,
                   episodes: int | None = None, min_episodes: int = 1) -> type[_Proposal]:
    """The schema to generate `kind` with; scenes are narrowed to the accepted cast and places,
    an outline to the planned number of episodes (at least `min_episodes`)."""
    base = PROPOSAL_MODELS[kind]
    cast, places = grammar_safe(cast or []), grammar_safe(places or [])
    if kind == "outline" and episodes:
        return create_model("OutlineProposal", __base__=OutlineProposal,
                            episodes=(list[EpisodeLogline],
                                      Field(min_length=max(1, min(min_episodes, episodes)), max_length=episodes)))
    if kind == "shots" and cast and places:
        cast_t = Literal[tuple(dict.fromkeys(cast))]  # type: ignore[valid-type]
        place_t = Literal[tuple(dict.fromkeys(places))]  # type: ignore[valid-type]
        char_model = create_model("ShotCharacter", __base__=ShotCharacter, name=(cast_t, ...))
        shot_model = create_model(
            "Shot", __base__=Shot, location=(place_t, places[0]),
            characters=(list[char_model], Field(default_factory=list, max_length=3)))  # type: ignore[valid-type]
        return create_model("ShotPlanProposal", __base__=ShotPlanProposal,
                            shots=(list[shot_model], Field(min_length=1, max_length=12)))  # type: ignore[valid-type]
    if kind != "scene" or not cast or not places:
        return base
    speakers = tuple(dict.fromkeys([*cast, "Narrator"]))
    speaker_t = Literal[speakers]  # type: ignore[valid-type]
    cast_t = Literal[tuple(dict.fromkeys(cast))]  # type: ignore[valid-type]
    place_t = Literal[tuple(dict.fromkeys(places))]  # type: ignore[valid-type]
    line_model = create_model(
        "DialogueLine", __base__=DialogueLine,
        speaker=(speaker_t, ...),
        emotion=(Literal[EMOTIONS], "neutral"),  # type: ignore[valid-type]
    )
    return create_model(
        "SceneProposal", __base__=SceneProposal,
        location=(place_t, ...),
        characters=(list[cast_t], Field(min_length=1, max_length=6)),  # type: ignore[valid-type]
        lines=(list[line_model], Field(min_length=1, max_length=8)),  # type: ignore[valid-type]
    )


def validate_proposal(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Validate (edited) proposal data against the plain schema; returns the cleaned dict."""
    return PROPOSAL_MODELS[kind].model_validate(data).model_dump()


def scene_problems(scene: dict[str, Any], cast: list[str], places: list[str]) -> list[str]:
    """Where a scene contradicts accepted canon: unknown speakers, characters or location."""
    known = {c.casefold() for c in cast} | {"narrator"}
    problems: list[str] = []
    if places and scene.get("location", "").casefold() not in {p.casefold() for p in places}:
        problems.append(f"location {scene.get('location')!r} is not in the bible; use one of {places}")
    for name in scene.get("characters", []):
        if name.casefold() not in known:
            problems.append(f"character {name!r} is not in the cast; use one of {cast}")
    for i, line in enumerate(scene.get("lines", []), 1):
        if line.get("speaker", "").casefold() not in known:
            problems.append(f"line {i}: speaker {line.get('speaker')!r} is not in the cast; use one of {cast}")
    return problems


def beats_problems(beats: dict[str, Any]) -> list[str]:
    """The mini-drama shape: a hook first, a twist somewhere, a cliffhanger last."""
    kinds = [b.get("kind") for b in beats.get("beats", [])]
    problems = []
    if not kinds or kinds[0] != "hook":
        problems.append("the first beat must be the hook")
    if "twist" not in kinds:
        problems.append("one beat must be a twist")
    if not kinds or kinds[-1] != "cliffhanger":
        problems.append("the last beat must be the cliffhanger")
    return problems


# ----------------------------------------------------------------------------- storyboard (shots)

FRAMINGS = ("establishing", "wide", "medium", "close-up", "extreme close-up")
CAMERA_MOVES = ("static", "push-in", "pull-out", "pan", "tilt", "shake")
TRANSITIONS = ("cut", "crossfade", "dip", "slide", "whip")


class ShotCharacter(_Proposal):
    name: str = Field(min_length=1, max_length=40)
    expression: str = Field(default="neutral", max_length=30)
    pose: str = Field(default="", max_length=80)


MAX_LINES_PER_SHOT = 4   # more would not fit a vertical panel's captions; longer exchanges take more shots


class Shot(_Proposal):
    framing: Literal["establishing", "wide", "medium", "close-up", "extreme close-up"] = "medium"
    angle: str = Field(default="eye level", max_length=40)
    camera_move: Literal["static", "push-in", "pull-out", "pan", "tilt", "shake"] = "static"
    characters: list[ShotCharacter] = Field(default_factory=list, max_length=3)
    location: str = Field(default="", max_length=60)
    lighting: str = Field(default="", max_length=80)
    mood: str = Field(default="", max_length=80)
    lines: list[int] = Field(default_factory=list, max_length=MAX_LINES_PER_SHOT)   # 1-based line numbers
    duration_s: float = Field(default=3.0, ge=0.5, le=15.0)
    transition: Literal["cut", "crossfade", "dip", "slide", "whip"] = "cut"
    off_screen: bool = False     # the line's speaker is heard, not seen (else the speaker is drawn)


class ShotPlanProposal(_Proposal):
    scene_id: str = Field(min_length=1, max_length=80)
    shots: list[Shot] = Field(min_length=1, max_length=12)


PROPOSAL_MODELS["shots"] = ShotPlanProposal
PROPOSAL_TITLES.update({"shots": "Shot plan", "reference": "Character reference sheet",
                        "background": "Location background", "panel": "Panel"})


def shots_problems(plan: dict[str, Any], scene: dict[str, Any], cast: list[str], places: list[str]) -> list[str]:
    """Where a shot plan contradicts its scene: unknown names or places, uncovered dialogue lines."""
    problems: list[str] = []
    known = {c.casefold() for c in cast}
    n_lines = len(scene.get("lines", []))
    covered: set[int] = set()
    for i, shot in enumerate(plan.get("shots", []), 1):
        for ch in shot.get("characters", []):
            if ch.get("name", "").casefold() not in known:
                problems.append(f"shot {i}: character {ch.get('name')!r} is not in the cast {cast}")
        if shot.get("location") and places and shot["location"].casefold() not in {p.casefold() for p in places}:
            problems.append(f"shot {i}: location {shot['location']!r} is not in the bible {places}")
        for n in shot.get("lines", []):
            if not 1 <= n <= n_lines:
                problems.append(f"shot {i}: line {n} does not exist (the scene has {n_lines} lines)")
            covered.add(n)
    missing = [n for n in range(1, n_lines + 1) if n not in covered]
    if missing:
        problems.append(f"dialogue lines {missing} are not covered by any shot")
    return problems


class TranslationProposal(_Proposal):
    """A scene's dialogue in another language, line by line (the card and the edit form)."""

    scene_id: str = Field(min_length=1, max_length=80)
    language: str = Field(min_length=2, max_length=8)
    source: list[str] = Field(default_factory=list)
    lines: list[str] = Field(min_length=1, max_length=20)


class CastingCard(_Proposal):
    engine: str = Field(default="piper", max_length=20)
    voice: str = Field(default="en_US-joe-medium", max_length=60)
    blend: str = Field(default="", max_length=40)    # a second Kokoro voice mixed in: "jm_kumo:0.3"
    rate: float = Field(default=1.0, ge=0.5, le=2.0)
    pitch_semitones: float = Field(default=0.0, ge=-12, le=12)
    energy: float = Field(default=1.0, ge=0.2, le=2.0)
    noise: float = Field(default=0.667, ge=0.0, le=1.5)
    instructions: str = Field(default="", max_length=300)


class TakeAdjust(_Proposal):
    rate: float = Field(default=1.0, ge=0.5, le=2.0)
    pitch_semitones: float = Field(default=0.0, ge=-12, le=12)
    spoken_text: str = Field(default="", max_length=400)


PROPOSAL_MODELS.update({"translation": TranslationProposal, "casting": CastingCard, "take": TakeAdjust})
PROPOSAL_TITLES.update({"translation": "Translation", "casting": "Casting", "take": "Line take"})


class MotionShot(_Proposal):
    shot_id: str = Field(min_length=1, max_length=80)
    camera_move: Literal["static", "push-in", "pull-out", "pan", "tilt", "shake"] = "static"
    ease: Literal["in_out", "linear", "in", "out"] = "in_out"
    grade: Literal["none", "warm", "cool", "desaturated", "night"] = "none"
    vignette: bool = False
    flicker: bool = False
    flash: bool = False
    transition: Literal["cut", "crossfade", "dip", "slide", "whip"] = "cut"
    pad_s: float = Field(default=0.3, ge=0.0, le=3.0)
    clip: list[str] = Field(default_factory=list)   # image-to-video frames (project paths), when made
    clip_fps: float = Field(default=8.0, gt=0, le=60)


class MotionProposal(_Proposal):
    scene_id: str = Field(min_length=1, max_length=80)
    shots: list[MotionShot] = Field(min_length=1, max_length=12)
    preview: str = ""


PROPOSAL_MODELS["motion"] = MotionProposal
PROPOSAL_TITLES["motion"] = "Motion"
