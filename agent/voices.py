"""The voices slice: casting, line takes, dubbing (translations) and the pronunciation lexicon.

Takes are drafted into `assets/drafts/...` and copied to versioned paths under `assets/audio/` only
when accepted (or uploaded). Each accepted take records what it was made from (the line's text, the
voice profile's revision, the lexicon's revision), so `take_status` can say when it went stale.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from agent.context import DirectorContext
from agent.state import Task
from memory.canon import Canon, Record
from memory.errors import InputError, RecordNotFoundError
from memory.faults import crash_point
from tools.backends.protocols import SpeechRequest, VoiceProfile
from tools.speech_text import speakable

PRIMARY_LANGUAGE = "en"
LANGUAGES = {"english": "en", "japanese": "ja", "chinese": "zh", "mandarin": "zh", "korean": "ko",
             "spanish": "es", "french": "fr", "german": "de", "italian": "it", "portuguese": "pt"}
LANGUAGE_NAMES = {v: k.capitalize() for k, v in LANGUAGES.items()}
#: Characters spoken per second, to compare spoken lengths across languages.
CHARS_PER_SECOND = {"en": 14.0, "ja": 7.5, "zh": 5.5, "ko": 7.0, "es": 15.0, "fr": 14.5, "de": 13.5,
                    "it": 15.0, "pt": 14.5}
TOO_LONG = 1.35      # a translation whose spoken length is this much longer is flagged
PROFILE_FIELDS = ("engine", "voice", "blend", "rate", "pitch_semitones", "energy", "noise", "instructions")



NARRATOR, NARRATOR_NAME = "narrator", "Narrator"   # the narrator's voice is voice-narrator


def _narrator() -> Record:
    """The narrator as a cast member: not a canon character, but cast and voiced like one."""
    return Record(id=NARRATOR, kind="character", rev=0, data={
        "name": NARRATOR_NAME, "gender": "", "age": "adult",
        "personality": "a calm storyteller", "voice": "calm, warm, clear narration"},
        actor="auto", created_at="", note="", deleted=False)


def voice_id(char_id: str) -> str:
    return f"voice-{char_id}"


def take_id(line_id: str, language: str) -> str:
    return f"take-{line_id}-{language}"


def translation_id(line_id: str, language: str) -> str:
    return f"{line_id}-{language}"


def language_code(name: str) -> str:
    code = LANGUAGES.get(name.strip().lower(), name.strip().lower())
    if code not in CHARS_PER_SECOND:
        raise InputError(f"unknown language {name!r}; Storyreel dubs into "
                         f"{', '.join(sorted(LANGUAGES))}")
    return code


def dub_languages(canon: Canon) -> list[str]:
    rec = canon.live("dub-languages")
    return list(rec.data.get("languages", [])) if rec else []


def lexicon(canon: Canon) -> tuple[dict[str, str], int | None]:
    rec = canon.live("lexicon")
    return (dict(rec.data.get("entries", {})), rec.rev) if rec else ({}, None)


def glossary(canon: Canon) -> list[dict[str, str]]:
    rec = canon.live("glossary")
    return list(rec.data.get("terms", [])) if rec else []


def apply_lexicon(text: str, entries: dict[str, str]) -> str:
    """Respell words the engine mispronounces (whole words, case-insensitive)."""
    for word in sorted(entries, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", entries[word], text, flags=re.IGNORECASE)
    return text


def episode_lines(canon: Canon, episode: int = 1) -> list[tuple[Record, dict[str, Any]]]:
    """(scene, line) pairs of an episode in order."""
    scenes = sorted(canon.children("scene", "episode", episode), key=lambda r: r.data.get("number", 0))
    return [(sc, ln) for sc in scenes for ln in sc.data.get("lines", []) if ln.get("id")]


def line_text(canon: Canon, line: dict[str, Any], language: str) -> str | None:
    if language == PRIMARY_LANGUAGE:
        return str(line.get("line", ""))
    rec = canon.live(translation_id(line["id"], language))
    return str(rec.data.get("text")) if rec else None


# ----------------------------------------------------------------------------- planning


def next_voice_task(canon: Canon, ctx: DirectorContext) -> Task | None:
    """Casting for each character, then a take per line; then translations and takes per dub; for
    the episode being planned (agent.episodes), else every started episode in order."""
    from agent.episodes import planning_episodes

    if ctx.voices is None:
        return None
    for episode in planning_episodes(canon):
        task = _voice_task(canon, episode)
        if task is not None:
            return task
    return None


def _voice_task(canon: Canon, episode: int) -> Task | None:
    speakers = {ln.get("speaker") for _, ln in episode_lines(canon, episode)}
    for char in canon.list("character"):
        if char.data.get("name") in speakers and not canon.live(voice_id(char.id)):
            return {"kind": "casting", "target_id": None, "subject": char.id}
    if NARRATOR_NAME in speakers and not canon.live(voice_id(NARRATOR)):
        return {"kind": "casting", "target_id": None, "subject": NARRATOR}
    for language in [PRIMARY_LANGUAGE, *dub_languages(canon)]:
        for scene, line in episode_lines(canon, episode):
            if language != PRIMARY_LANGUAGE and not canon.live(translation_id(line["id"], language)):
                return {"kind": "translation", "target_id": None, "scene_id": scene.id, "language": language}
            if not canon.live(take_id(line["id"], language)):
                return {"kind": "take", "target_id": None, "subject": line["id"], "scene_id": scene.id,
                        "language": language}
    return None


# ----------------------------------------------------------------------------- casting


def _profile(data: dict[str, Any]) -> VoiceProfile:
    fields = {k: data[k] for k in PROFILE_FIELDS if k in data}
    try:
        return VoiceProfile(**fields)
    except TypeError as exc:
        raise InputError(f"voice profile fields are wrong ({exc})") from exc


def _profile_dict(profile: VoiceProfile) -> dict[str, Any]:
    return dataclasses.asdict(profile)


def default_language_profile(language: str, profile: VoiceProfile | None = None) -> dict[str, Any]:
    """The voice a character speaks ``language`` with: for Japanese, Kokoro's Japanese path (when
    pyopenjtalk-plus is installed) with the character's own Kokoro voice and blend (Piper joe's
    characters get Kokoro's man, kumo); espeak-ng otherwise."""
    if language == "ja":
        from tools.backends.voice_kokoro import KokoroVoiceSynth

        if KokoroVoiceSynth.speaks_japanese():
            if profile is not None and profile.engine == "kokoro":
                return {"engine": "kokoro", "voice": profile.voice, "blend": profile.blend}
            return {"engine": "kokoro", "voice": "jm_kumo", "blend": ""}
    return {"engine": "espeak", "voice": language, "blend": ""}


NOTE_ADJUST = (("deeper", "pitch_semitones", -3.0), ("lower", "pitch_semitones", -3.0),
               ("higher", "pitch_semitones", 3.0), ("faster", "rate", 0.15), ("slower", "rate", -0.15),
               ("louder", "energy", 0.2), ("softer", "energy", -0.2), ("quieter", "energy", -0.2))


def propose_casting(ctx: DirectorContext, task: Task, *, proposal_id: str, notes: list[str],
                    overrides: dict[str, Any] | None) -> dict[str, Any]:
    """A distinct voice for one character, with an audition take of a sample line."""
    from tools.casting import alternative_voices, base_voice_of, propose_distinct_profiles

    canon = ctx.canon
    char = _narrator() if task["subject"] == NARRATOR else canon.get(task["subject"])
    others = [_profile(r.data) for r in canon.list("voice") if r.id != voice_id(char.id)]
    rejected = [_profile(p) for p in task.get("rejected_profiles", [])]
    profile = propose_distinct_profiles([char.data], others + rejected)[0]
    wanted = [(field, delta) for word, field, delta in NOTE_ADJUST if notes and word in notes[-1].lower()]
    if wanted and rejected:  # "deeper", "faster"...: adjust the voice the director just heard
        profile = rejected[-1]
        for field, delta in wanted:
            profile = dataclasses.replace(profile, **{field: round(getattr(profile, field) + delta, 2)})
    if overrides:
        profile = _profile({**_profile_dict(profile), **_base_voice_edit(profile, overrides)})
    from agent.episodes import started_episodes

    lines = [ln for ep in started_episodes(canon) for _, ln in episode_lines(canon, ep)
             if ln.get("speaker") == char.data.get("name")]
    sample = str(lines[0]["line"]) if lines else f"Hi, I'm {char.data.get('name')}. Nice to meet you."
    out = ctx.path(Path("assets", "drafts", "casting", char.id, proposal_id, "audition.wav"))
    info = synthesize(ctx, profile, sample, "neutral", PRIMARY_LANGUAGE, out)
    langs = {lang: default_language_profile(lang, profile) for lang in dub_languages(canon)}
    base = base_voice_of(profile)
    # other base voices to audition: an Edit choosing one (engine/voice/blend) comes back through
    # `overrides` and is auditioned in the next proposal
    alternatives = alternative_voices(char.data, profile, others)
    return {"subject": char.id, "subject_name": char.data.get("name"), **_profile_dict(profile),
            "base_voice": base.label if base else f"{profile.engine} {profile.voice}",
            "alternatives": alternatives, "languages": langs, "sample_line": sample,
            "candidates": [_candidate(ctx, info)]}


def _base_voice_edit(profile: VoiceProfile, overrides: dict[str, Any]) -> dict[str, Any]:
    """The profile fields an edit sets. ``voice`` may name a blend (``"jm_kumo+jf_nezumi:0.5"``, as
    the card's alternatives write it); choosing another engine or voice without naming a blend
    auditions that voice unblended."""
    chosen = {k: v for k, v in overrides.items() if k in PROFILE_FIELDS}
    voice = str(chosen.get("voice") or "")
    if "+" in voice:
        chosen["voice"], chosen["blend"] = (part.strip() for part in voice.split("+", 1))
    elif "blend" not in chosen and (chosen.get("engine", profile.engine), chosen.get("voice", profile.voice)) != (
            profile.engine, profile.voice):
        chosen["blend"] = ""
    return chosen


def _candidate(ctx: DirectorContext, info: Any) -> dict[str, Any]:
    """A recording on the card: path, measurements and how its mouth will move (`lipsync`)."""
    from tools.lipsync import LIPSYNC_ENVELOPE, LIPSYNC_PHONEMES, track_path

    track = track_path(info.path)
    return {"path": _rel(ctx, info.path), "duration_s": round(info.duration_s, 2),
            "peak_dbfs": round(info.peak_dbfs, 1), "loudness_lufs": _lufs(info),
            "lipsync": LIPSYNC_PHONEMES if track.is_file() else LIPSYNC_ENVELOPE,
            **({"visemes": _rel(ctx, track)} if track.is_file() else {})}


def _lufs(info: Any) -> float | None:
    value = float(info.loudness_lufs)
    return round(value, 1) if value > -200 else None


def _rel(ctx: DirectorContext, path: Path) -> str:
    return ctx.rel(path)


def synthesize(ctx: DirectorContext, profile: VoiceProfile, text: str, emotion: str, language: str,
               out: Path, seed: int = 0) -> Any:
    """Speak `text` with `profile` (after the lexicon) into a 48 kHz mono project WAV."""
    from tools.audio import to_project_wav
    from tools.lipsync import track_path

    entries, _ = lexicon(ctx.canon)
    spoken = apply_lexicon(speakable(text), entries)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_suffix(".raw.wav")
    synth = ctx.voices.synth_for(profile)
    track_path(out).unlink(missing_ok=True)
    synth.synthesize(SpeechRequest(text=spoken, language=language, profile=profile, emotion=emotion, seed=seed), raw)
    crash_point("mid-take-write")
    info = to_project_wav(raw, out)
    if track_path(raw).is_file():   # the synth's mouth track (same timing: resampling keeps it)
        track_path(raw).replace(track_path(out))
    raw.unlink(missing_ok=True)
    return info


def casting_clashes(canon: Canon, data: dict[str, Any]) -> list[str]:
    """Other characters whose voice this casting would (almost) duplicate: the card says so, and
    accepting anyway is the director insisting."""
    from tools.casting import profiles_too_close

    mine = _profile(data)
    return [f"sounds like {r.data.get('name', r.id)}'s voice (pitch/rate too close); accept only if you "
            "want them alike" for r in canon.list("voice")
            if r.id != voice_id(data.get("subject", "")) and profiles_too_close(mine, _profile(r.data))]


# ----------------------------------------------------------------------------- takes


def _voice_for(canon: Canon, speaker: str, language: str) -> tuple[VoiceProfile, Record | None]:
    char = canon.find_by_name("character", speaker) if speaker != "Narrator" else None
    rec = canon.live(voice_id(char.id)) if char else canon.live("voice-narrator")
    base = _profile(rec.data) if rec else VoiceProfile()
    if language != PRIMARY_LANGUAGE:
        lang = ((rec.data.get("languages", {}) if rec else {}).get(language)
                or default_language_profile(language, base))   # dubbed after casting: the same voice
        base = dataclasses.replace(base, **{k: v for k, v in lang.items() if k in PROFILE_FIELDS})
    return base, rec


def take_made_from(canon: Canon, line_id: str, language: str, speaker: str) -> dict[str, Any]:
    scene_id = line_id.rsplit("-l", 1)[0]
    scene = canon.get(scene_id)
    line = next((ln for ln in scene.data.get("lines", []) if ln.get("id") == line_id), None)
    if line is None:
        raise RecordNotFoundError(f"line {line_id} is no longer in {scene_id}")
    _, voice = _voice_for(canon, speaker, language)
    _, lex_rev = lexicon(canon)
    text = line_text(canon, line, language)
    return {"text": text, "speaker": line.get("speaker"), "emotion": line.get("emotion"),
            "voice": [voice.id, voice.rev] if voice else None, "lexicon": lex_rev}


def _take_plan(ctx: DirectorContext, task: Task, *, attempt: int, overrides: dict[str, Any] | None
               ) -> dict[str, Any]:
    """What a take of the task's line is made from: the line, its voice (with the card's
    adjustments), the line's text in the language and what is spoken (a respelling)."""
    canon = ctx.canon
    line_id, language = task["subject"], task.get("language", PRIMARY_LANGUAGE)
    scene = canon.get(task.get("scene_id") or line_id.rsplit("-l", 1)[0])
    lines = list(scene.data.get("lines", []))
    index = next((i for i, ln in enumerate(lines) if ln.get("id") == line_id), None)
    if index is None:
        raise RecordNotFoundError(f"line {line_id} is no longer in {scene.id}; say “status” to see what "
                                  "is left to voice")
    line = lines[index]
    profile, _ = _voice_for(canon, str(line.get("speaker")), language)
    text = line_text(canon, line, language) or ""
    overrides = dict(overrides or {})
    if overrides:
        profile = _profile({**_profile_dict(profile), **{k: v for k, v in overrides.items() if k in PROFILE_FIELDS}})
    return {"line_id": line_id, "language": language, "line": line, "profile": profile, "text": text,
            "spoken": str(overrides.get("text") or text), "seed": attempt, "scene": scene, "index": index + 1}


def _take_data(ctx: DirectorContext, plan: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any]:
    line, profile = plan["line"], plan["profile"]
    return {"subject": plan["line_id"], "language": plan["language"], "speaker": line.get("speaker"),
            "text": plan["text"], "spoken_text": plan["spoken"], "emotion": line.get("emotion"),
            "rate": profile.rate, "pitch_semitones": profile.pitch_semitones, "engine": profile.engine,
            "voice": profile.voice, "blend": profile.blend, "candidates": candidates,
            "made_from": take_made_from(ctx.canon, plan["line_id"], plan["language"], str(line.get("speaker")))}


def propose_take(ctx: DirectorContext, task: Task, *, proposal_id: str, attempt: int,
                 overrides: dict[str, Any] | None) -> dict[str, Any]:
    plan = _take_plan(ctx, task, attempt=attempt, overrides=overrides)
    line_id, language, text = plan["line_id"], plan["language"], plan["text"]
    out = ctx.path(Path("assets", "drafts", "take", line_id, language, proposal_id, "take.wav"))
    info = synthesize(ctx, plan["profile"], plan["spoken"], str(plan["line"].get("emotion", "neutral")), language,
                      out, seed=attempt)
    candidate = _candidate(ctx, info)
    data = _take_data(ctx, plan, [candidate])
    data["lipsync"] = candidate["lipsync"]
    if check := check_recording(ctx, info.path, text, language):
        data["check"] = check
    return data


def take_speech(ctx: DirectorContext, task: Task, *, attempt: int, overrides: dict[str, Any] | None = None
                ) -> tuple[SpeechRequest, dict[str, Any]]:
    """The `SpeechRequest` a take job speaks (the lexicon applied; seed = the attempt, as in the
    step) and the take's plan. Its job key is the text, voice, emotion, language and seed."""
    plan = _take_plan(ctx, task, attempt=attempt, overrides=overrides)
    entries, _ = lexicon(ctx.canon)
    request = SpeechRequest(text=apply_lexicon(speakable(plan["spoken"]), entries), language=plan["language"],
                            profile=plan["profile"], emotion=str(plan["line"].get("emotion", "neutral")),
                            seed=attempt)
    return request, plan


def take_label(plan: dict[str, Any]) -> str:
    """What a take's drafting card says is voiced: "line 3 of scene 1 (Aiko)", plus a dub's language."""
    lang = "" if plan["language"] == PRIMARY_LANGUAGE else f", {plan['language']}"
    return (f"line {plan['index']} of scene {plan['scene'].data.get('number', '?')} "
            f"({plan['line'].get('speaker')}{lang})")


def submit_take(ctx: DirectorContext, task: Task, *, proposal_id: str, attempt: int,
                overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Submit the take as a TTS job (`ctx.job_runner`, role "tts") and return the card's data at
    once: no candidate yet, and a "drafting" entry naming the job; the session resumes the graph
    with ``jobs_done`` when it is done (`take_from_results`). A key already done returns its job."""
    from tools.jobs.roles import speech_spec

    request, plan = take_speech(ctx, task, attempt=attempt, overrides=overrides)
    label = take_label(plan)
    job = ctx.job_runner.submit(speech_spec(request, label=f"take of {label}"))
    data = _take_data(ctx, plan, [])
    data["drafting"] = {"verb": "voicing", "label": label, "jobs": [job], "proposal_id": proposal_id}
    return data


def take_from_results(ctx: DirectorContext, data: dict[str, Any], results: list[dict[str, Any]]
                      ) -> dict[str, Any]:
    """The take card's data once its TTS job is done: the landed WAV (under assets/jobs/tts/) as
    its candidate, measured, with its mouth track; the ear check is queued as for a take made in
    the step."""
    from tools.audio import take_info
    from tools.lipsync import LIPSYNC_ENVELOPE, LIPSYNC_PHONEMES

    data = {k: v for k, v in data.items() if k != "drafting"}
    if not results:
        raise InputError("the take's job brought no result; press Redo for a fresh take")
    files, out = results[0].get("files") or {}, results[0].get("data") or {}
    try:
        rel = files[out["audio"]]
        visemes = files[out["visemes"]] if out.get("visemes") else None
    except KeyError as exc:
        raise InputError(f"the take's job result names {exc} but brought no such file ({sorted(files)}); "
                         "press Redo for a fresh take") from None
    info = take_info(ctx.path(rel))
    candidate = {"path": rel, "duration_s": round(info.duration_s, 2), "peak_dbfs": round(info.peak_dbfs, 1),
                 "loudness_lufs": _lufs(info), "lipsync": LIPSYNC_PHONEMES if visemes else LIPSYNC_ENVELOPE,
                 **({"visemes": visemes} if visemes else {})}
    data["candidates"], data["lipsync"] = [candidate], candidate["lipsync"]
    data["jobs"] = [r.get("job_id") for r in results]
    if check := check_recording(ctx, ctx.path(rel), str(data.get("text") or ""), str(data.get("language"))):
        data["check"] = check
    return data


def check_recording(ctx: DirectorContext, wav: Path, text: str, language: str) -> dict[str, Any] | None:
    """Queue the ear check of a take in the background (`agent.take_checks`; the graph never waits
    for Whisper) when the session checks takes; what the card shows now (usually "pending"), None
    without a checker."""
    from agent.take_checks import submit_check

    return submit_check(ctx, wav, text, language)


def accept_audio(ctx: DirectorContext, kind: str, data: dict[str, Any], *, upload: str | None, actor: str,
                 note: str) -> list[Record]:
    """Commit a casting (voice profile) or a take (versioned WAV copy) to canon."""
    canon = ctx.canon
    if kind == "casting":
        profile = {k: data[k] for k in PROFILE_FIELDS if k in data}
        record = {**profile, "character": data["subject"], "name": data.get("subject_name"),
                  "languages": data.get("languages", {}), "audition": data["candidates"][0]["path"]}
        return [canon.upsert("voice", record, actor=actor, record_id=voice_id(data["subject"]), note=note)]
    from tools.audio import take_info

    chosen = upload or data["candidates"][0]["path"]
    src = ctx.path(chosen)
    if not src.is_file():
        raise InputError(f"the recording {chosen} is gone (its drafts folder was deleted?); "
                         "press Redo for a fresh take, or upload your own")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:10]
    record_id = take_id(data["subject"], data["language"])
    prev = canon.live(record_id)
    dest = ctx.path(Path("assets", "audio", data["subject"], data["language"],
                         f"v{(prev.rev + 1) if prev else 1}-{digest}.wav"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():  # versioned and content-addressed: an accepted take is never overwritten
        tmp = dest.with_suffix(".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
    # the mouth track travels with a generated take; an upload has none (its mouth follows loudness)
    from agent.take_checks import accepted_check
    from tools.lipsync import LIPSYNC_ENVELOPE, LIPSYNC_PHONEMES, track_path

    track = track_path(dest)
    if not upload and track_path(src).is_file() and not track.is_file():
        shutil.copyfile(track_path(src), track.with_name(track.name + ".tmp"))
        track.with_name(track.name + ".tmp").replace(track)
    lipsync = LIPSYNC_PHONEMES if track.is_file() and not upload else LIPSYNC_ENVELOPE
    info = take_info(dest)
    made = data.get("made_from") if not upload else take_made_from(
        canon, data["subject"], data["language"], str(data.get("speaker")))
    record = {"line_id": data["subject"], "language": data["language"], "speaker": data.get("speaker"),
              "path": ctx.rel(dest), "duration_s": round(info.duration_s, 3),
              "peak_dbfs": round(info.peak_dbfs, 2), "loudness_lufs": _lufs(info),
              "source": "upload" if upload else "generated", "made_from": made, "lipsync": lipsync,
              **({"check": check} if (check := accepted_check(ctx, src, dest, str(made.get("text") or ""),
                                                              data["language"], upload=bool(upload))) else {}),
              **({"visemes": ctx.rel(track)} if lipsync == LIPSYNC_PHONEMES else {})}
    return [canon.upsert("take", record, actor=actor, record_id=record_id, note=note)]


def take_status(canon: Canon, take: Record) -> tuple[str, list[str]]:
    try:
        now = take_made_from(canon, take.data["line_id"], take.data["language"], str(take.data.get("speaker")))
    except RecordNotFoundError as exc:
        return "stale", [str(exc)]
    then = take.data.get("made_from") or {}
    reasons = [f"{k} changed since the take ({then.get(k)!r} → {now.get(k)!r})"
               for k in ("text", "speaker", "voice", "lexicon") if now.get(k) != then.get(k)]
    return ("stale" if reasons else "accepted"), reasons


# ----------------------------------------------------------------------------- dubbing


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


def translation_model(n_lines: int) -> type[BaseModel]:
    return create_model("TranslationProposal", __base__=_Model,
                        lines=(list[str], Field(min_length=n_lines, max_length=n_lines)))


def translation_messages(canon: Canon, scene: Record, language: str) -> list[dict[str, str]]:
    terms = [t for t in glossary(canon) if t.get(language)]
    names = [str(r.data.get("name")) for r in canon.list("character")]
    lines = "\n".join(f"{i}. {ln.get('speaker')} ({ln.get('emotion')}): {ln.get('line')}"
                      for i, ln in enumerate(scene.data.get("lines", []), 1))
    rules = [(f"Translate each dialogue line into {LANGUAGE_NAMES.get(language, language)}, same order, "
             "one string per line, spoken and natural, about as long to say as the original.")]
    if terms:
        rules.append("Glossary (always use these): " + "; ".join(f"{t['term']} → {t[language]}" for t in terms))
    rules.append("Keep character names as in the glossary, else unchanged: " + ", ".join(names))
    return [{"role": "system", "content": "You translate anime dialogue for dubbing. Answer with JSON only."},
            {"role": "user", "content": "\n".join(rules) + f"\n\nScene '{scene.data.get('title')}':\n{lines}"}]


def glossary_problems(source: list[str], translated: list[str], language: str, canon: Canon) -> list[str]:
    problems = []
    terms = {t["term"]: t[language] for t in glossary(canon) if t.get(language)}
    for name in (str(r.data.get("name")) for r in canon.list("character")):
        terms.setdefault(name, name)
    for i, (src, dst) in enumerate(zip(source, translated), 1):
        for term, target in terms.items():
            if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", src, re.IGNORECASE) and target not in dst:
                problems.append(f"line {i}: {term!r} must be translated as {target!r} (glossary)")
    return problems


def spoken_seconds(text: str, language: str) -> float:
    return len(re.sub(r"\s+", "", text)) / CHARS_PER_SECOND.get(language, 14.0)


def length_warnings(source: list[str], translated: list[str], language: str) -> list[str]:
    warnings = []
    for i, (src, dst) in enumerate(zip(source, translated), 1):
        a, b = spoken_seconds(src, PRIMARY_LANGUAGE), spoken_seconds(dst, language)
        if a > 0 and b / a > TOO_LONG:
            warnings.append(f"line {i} is much longer to say than the original (≈{b:.1f} s vs {a:.1f} s); "
                            "shorten it so it fits the shot")
    return warnings


def write_translation(canon: Canon, data: dict[str, Any], *, actor: str, note: str) -> list[Record]:
    scene = canon.get(data["scene_id"])
    records = []
    for line, text in zip(scene.data.get("lines", []), data["lines"]):
        records.append(canon.upsert("line", {"line_id": line["id"], "scene_id": scene.id,
                                             "language": data["language"], "text": text,
                                             "speaker": line.get("speaker"), "emotion": line.get("emotion"),
                                             "source_text": line.get("line")},
                                    actor=actor, record_id=translation_id(line["id"], data["language"]),
                                    note=note))
    return records


class VoiceBackends:
    """One synth per engine for the session (Piper loads once), from the project's settings."""

    def __init__(self, openai_settings: dict[str, Any] | None = None, checker: Any = None) -> None:
        self.openai_settings = dict(openai_settings or {})
        self.cache: dict[Any, Any] = {}
        self.checker = checker   # a tools.take_check.Transcriber: takes are checked by ear; None: off
        self.checks: Any = None  # its background queue (agent.take_checks.checks_of makes it on first use)

    def synth_for(self, profile: VoiceProfile) -> Any:
        from tools.casting import voice_synth_for

        return voice_synth_for(profile, openai_settings=self.openai_settings, cache=self.cache)
