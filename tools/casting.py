"""Voice casting: from character descriptions to voice profiles that sound different.

Offline there is one English neural voice, so casting is parameters: pitch (duration-preserving
shift), rate and variation. `propose_distinct_profiles` reads gender/age/voice words in a
character's description deterministically (no model, same answer every time), then spreads the
profiles so that any two on the same engine and voice differ by at least
`MIN_PITCH_GAP_SEMITONES` of pitch or `MIN_RATE_GAP` of speed: audibly different, not 1 %.

`voice_synth_for` turns a profile into its backend, one instance per engine, so the Piper model
loads once per session however many characters speak.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
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

    Different engines or different base voices always sound different; on the same voice,
    at least 3 semitones of pitch or 15 % of speed are needed to tell characters apart.
    """
    if a.engine != b.engine or a.voice != b.voice:
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


def _base_profile(character: Mapping[str, Any]) -> VoiceProfile:
    """The profile the description asks for, before spreading."""
    words = _words(character)
    gender = _words({"gender": character.get("gender")}) if isinstance(character.get("gender"), str) else set()
    if gender & (_FEMALE | _MALE):
        female = bool(gender & _FEMALE) and not gender & _MALE
    else:
        female = len(words & _FEMALE) > len(words & _MALE)
    child = bool(words & _CHILD) and not (words & _OLD)
    old = bool(words & _OLD)
    pitch, rate, energy, noise = 0.0, 1.0, 1.0, 0.667
    if female:
        pitch += 6.0
    if child:
        pitch += 3.0
        rate *= 1.08
    if old:
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


def propose_distinct_profiles(characters: list[dict], existing: list[VoiceProfile]) -> list[VoiceProfile]:
    """One profile per character, in order, none too close to ``existing`` or to each other.

    Deterministic: the same characters and existing cast always give the same proposal.
    """
    taken = list(existing)
    proposals: list[VoiceProfile] = []
    for index, character in enumerate(characters):
        if not isinstance(character, Mapping):
            raise InputError(f"character #{index + 1} is {type(character).__name__}, not a record with a description")
        base = _base_profile(character)
        chosen = base
        if any(profiles_too_close(base, other) for other in taken):
            chosen = next((c for c in _candidates(base) if not any(profiles_too_close(c, o) for o in taken)), None)
            if chosen is None:
                name = character.get("name") or f"#{index + 1}"
                raise InputError(
                    f"no distinct offline voice is left for {name}: {len(taken)} voices already use the room "
                    "on the single English voice; cast some characters on another engine (openai, espeak)"
                )
        taken.append(chosen)
        proposals.append(chosen)
    return proposals


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
