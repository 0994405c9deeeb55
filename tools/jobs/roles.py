"""Built-in job roles: the project's painter and voices as work functions, plus their spec builders.

`painter_role(section)` builds the painter the project's [painter] table names (animatic, diffusers,
openai) once per worker (`painter_role_for(painter)` wraps one the process already has: the session's
in-process runner, a test's fake); `panel_spec` turns a `PanelRequest` into a JSON `JobSpec` whose reference
sheet and background travel as inputs. `tts_role` (`tts_role_for` around the session's voices) does
the same for takes (`speech_spec`: the take comes back as a 48 kHz project WAV with its mouth track),
`i2v_role` for image-to-video clips (`clip_spec`), and `preview_role` for a motion card's low-res
preview (`preview_job`: the scene's `EpisodeSpec`, its panels, layers, takes and clip frames shipped
as inputs; the cpu lane; the MP4 comes back as bytes). The
factories are module-level `functools.partial`s, so Ray can ship them to its actors.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memory.project import Project
from tools.backends.protocols import CharacterInShot, PanelRequest, SpeechRequest, VoiceProfile
from tools.jobs import JobSpec, Role, WorkContext, WorkFn, WorkOutput

# --------------------------------------------------------------------------- painter


def _relative_inputs(project: Project) -> tuple[list[str], Callable[[Path | None], str | None]]:
    """A job's input list and the function that adds a file to it (once), returning its
    project-relative path (None stays None)."""
    inputs: list[str] = []

    def rel(path: Path | None) -> str | None:
        if path is None:
            return None
        relative = project.relative(path)
        if relative not in inputs:
            inputs.append(relative)
        return relative

    return inputs, rel


def panel_spec(request: PanelRequest, project: Project, *, model: str, label: str = "") -> JobSpec:
    """A painter job for `request`; `model` names the painter and checkpoint (staleness, key)."""
    inputs, rel = _relative_inputs(project)

    payload = dataclasses.asdict(request)
    payload["background_image"] = rel(request.background_image)
    payload["characters"] = [{**dataclasses.asdict(c), "reference_image": rel(c.reference_image)}
                             for c in request.characters]
    return JobSpec("painter", payload, model=model, inputs=tuple(inputs),
                   label=label or f"{request.kind} for {request.shot_id}")


def panel_request(payload: dict[str, Any], ctx: WorkContext) -> PanelRequest:
    """The `PanelRequest` a painter job's payload describes, its input files at local paths."""
    data = dict(payload)

    def local(rel: str | None) -> Path | None:
        return None if rel is None else ctx.input(rel)

    characters = tuple(
        CharacterInShot(**{**c, "look_tags": tuple(c.get("look_tags", ())),
                           "reference_image": local(c.get("reference_image"))})
        for c in data.pop("characters", ())
    )
    tuples = {f.name for f in dataclasses.fields(PanelRequest) if str(f.type).startswith("tuple")}
    fields = {k: (tuple(v) if k in tuples else v) for k, v in data.items()}
    fields["background_image"] = local(data.get("background_image"))
    return PanelRequest(**{**fields, "characters": characters})


def _painter_work(section: dict[str, Any] | None) -> WorkFn:
    from tools.backends.factory import painter_from_settings

    return _paint_with(painter_from_settings(section))        # loaded once per worker / actor


def _paint_with(painter: Any) -> WorkFn:
    """The painter work function around one `PanelPainter`."""

    def paint(payload: dict[str, Any], ctx: WorkContext) -> WorkOutput:
        request = panel_request(payload, ctx)
        ctx.progress(0.0, f"painting {request.shot_id}")
        out = ctx.scratch / "out"
        result = painter.paint(request, out)
        output = WorkOutput.from_folder(out)

        def name(path: Path) -> str:
            return Path(path).resolve().relative_to(out.resolve()).as_posix()

        output.data = {"image": name(result.image), "seed": result.seed, "model": result.model,
                       "layers": {k: name(v) for k, v in result.layers.items()},
                       "variants": {k: name(v) for k, v in result.variants.items()}}
        return output
    return paint


def _given(painter: Any) -> WorkFn:
    return _paint_with(painter)


def painter_role_for(painter: Any) -> Role:
    """The painter role around a painter this process already has (the session's, a test's fake):
    every in-process worker thread shares that one instance. For Ray use `painter_role(section)`,
    which builds the painter on each actor."""
    return Role("painter", functools.partial(_given, painter), lane="gpu")


def painter_model(painter: Any) -> str:
    """The model id of a painter job (part of its key): the backend name and its checkpoint, if any."""
    name = str(getattr(painter, "name", type(painter).__name__))
    config = getattr(painter, "config", None)
    checkpoint = getattr(config, "model", None) or getattr(painter, "model", None)
    return f"{name}:{checkpoint}" if isinstance(checkpoint, str) and checkpoint else name


def painter_role(section: dict[str, Any] | None = None) -> Role:
    """The painter role for a project's [painter] table: one GPU per Ray actor for diffusers."""
    backend = str((section or {}).get("backend", "animatic"))
    return Role("painter", functools.partial(_painter_work, dict(section or {})), lane="gpu",
                num_gpus=1.0 if backend == "diffusers" else 0.0)


# --------------------------------------------------------------------------- voices


def speech_spec(request: SpeechRequest, *, label: str = "") -> JobSpec:
    """A TTS job for `request`; the model id is the engine and voice (part of the key)."""
    payload = dataclasses.asdict(request)
    model = f"{request.profile.engine}:{request.profile.voice}"
    return JobSpec("tts", payload, model=model, label=label or f"take: {request.text[:40]}")


def _speak_with(synth_for: Any) -> WorkFn:
    """The TTS work function: `synth_for(profile)` gives the synth; the take comes back in the
    project's format (48 kHz mono WAV, measured) with its mouth track when the synth wrote one."""

    def speak(payload: dict[str, Any], ctx: WorkContext) -> WorkOutput:
        from tools.audio import to_project_wav
        from tools.lipsync import track_path

        data = dict(payload)
        profile = VoiceProfile(**data.pop("profile", {}))
        request = SpeechRequest(**data, profile=profile)
        ctx.progress(0.0, f"voicing with {profile.engine}")
        synth = synth_for(profile)
        out = ctx.scratch / "out"
        out.mkdir()
        raw = ctx.scratch / "take.raw.wav"
        synth.synthesize(request, raw)
        ctx.progress(0.8, "converting")
        to_project_wav(raw, out / "take.wav")
        if track_path(raw).is_file():        # the synth's mouth track (resampling keeps its timing)
            track_path(raw).replace(track_path(out / "take.wav"))
        output = WorkOutput.from_folder(out)
        output.data = {"audio": "take.wav", "engine": profile.engine,
                       **({"visemes": track_path(out / "take.wav").name}
                          if track_path(out / "take.wav").is_file() else {})}
        return output
    return speak


def _tts_work(openai_settings: dict[str, Any] | None) -> WorkFn:
    from tools.casting import voice_synth_for

    cache: dict = {}                                  # one synth per engine per worker
    return _speak_with(functools.partial(voice_synth_for, openai_settings=openai_settings, cache=cache))


def _given_voices(voices: Any) -> WorkFn:
    return _speak_with(voices.synth_for)


def tts_role(openai_settings: dict[str, Any] | None = None) -> Role:
    """The voices role: CPU actors (Piper, Kokoro, espeak load once per worker)."""
    return Role("tts", functools.partial(_tts_work, dict(openai_settings or {})), lane="tts")


def tts_role_for(voices: Any) -> Role:
    """The voices role around the session's own `VoiceBackends` (anything with
    ``synth_for(profile)``: a test's fake): every in-process worker shares its synth cache."""
    return Role("tts", functools.partial(_given_voices, voices), lane="tts")


# --------------------------------------------------------------------------- image-to-video


def clip_spec(panel: str, *, prompt: str, num_frames: int, fps: int, seed: int, model: str,
              label: str = "") -> JobSpec:
    """An image-to-video job animating the project-relative `panel` (shipped to the worker)."""
    payload = {"panel": panel, "prompt": prompt, "num_frames": num_frames, "fps": fps, "seed": seed}
    return JobSpec("i2v", payload, model=model, inputs=(panel,), label=label or f"clip for {Path(panel).name}")


def _i2v_work(section: dict[str, Any] | None) -> WorkFn:
    from memory.errors import InputError
    from tools.backends.factory import animator_from_settings

    animator = animator_from_settings(section)      # the pipeline loads on the first clip, once
    if animator is None:
        raise InputError("image-to-video jobs need [motion] backend = \"animatediff\" with a model; "
                         "the default \"camera\" moves need no job")
    return _animate_with(animator)


def _animate_with(animator: Any) -> WorkFn:
    """The image-to-video work function around one animator (`animate(panel, prompt, frames, fps,
    seed, out_dir) -> frames`)."""

    def animate(payload: dict[str, Any], ctx: WorkContext) -> WorkOutput:
        ctx.progress(0.0, f"animating {Path(payload['panel']).name}")
        out = ctx.scratch / "out"
        frames = animator.animate(ctx.input(payload["panel"]), payload["prompt"], int(payload["num_frames"]),
                                  int(payload["fps"]), int(payload["seed"]), out)
        output = WorkOutput.from_folder(out)
        output.data = {"frames": [Path(f).resolve().relative_to(out.resolve()).as_posix() for f in frames],
                       "fps": int(payload["fps"]), "loads": getattr(animator, "load_count", None)}
        return output
    return animate


def i2v_role_for(animator: Any) -> Role:
    """The image-to-video role around the session's own animator (its pipeline loads once): the
    in-process GPU lane."""
    return Role("i2v", functools.partial(_animate_with, animator), lane="gpu")


def i2v_role(section: dict[str, Any] | None = None) -> Role:
    """The image-to-video role for a project's [motion] table: one GPU per Ray actor."""
    return Role("i2v", functools.partial(_i2v_work, dict(section or {})), lane="gpu", num_gpus=1.0)


# --------------------------------------------------------------------------- motion previews

PREVIEW_FILE = "preview.mp4"


def preview_job(spec: Any, project: Project, *, label: str = "") -> JobSpec:
    """A cpu-lane job rendering `spec` (a `tools.render.EpisodeSpec`, a scene's preview): every file
    it names (panels, layers, variants, takes, mouth tracks, clip frames, music, font) travels as a
    project-relative input, so the key follows the versioned files and the motion (camera moves,
    grade, effects, timing, seeds, size), and a finished key is never rendered again."""
    inputs, rel = _relative_inputs(project)

    shots = []
    for shot in spec.shots:
        row = {f.name: getattr(shot, f.name) for f in dataclasses.fields(shot)}
        row.update(panel=rel(shot.panel), layers={k: rel(v) for k, v in shot.layers.items()},
                   variants={k: rel(v) for k, v in shot.variants.items()}, speakers=list(shot.speakers),
                   clip=[rel(p) for p in shot.clip], captions=[dataclasses.asdict(c) for c in shot.captions],
                   takes=[{"wav": rel(t.wav), "start": t.start, "visemes": rel(t.visemes), "speaker": t.speaker}
                          for t in shot.takes])
        shots.append(row)
    episode = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name != "shots"}
    episode.update(music=rel(spec.music), font=rel(spec.font), shots=shots)
    return JobSpec("preview", episode, model="ffmpeg", inputs=tuple(inputs),
                   label=label or f"preview of {', '.join(s.shot_id for s in spec.shots)[:60]}")


def preview_episode(payload: dict[str, Any], ctx: WorkContext) -> Any:
    """The `EpisodeSpec` a preview job's payload describes, its files at the worker's local paths."""
    from tools.render import CaptionCue, EpisodeSpec, ShotSpec, TakeCue

    def local(rel: str | None) -> Path | None:
        return None if rel is None else ctx.input(rel)

    data = dict(payload)
    shots = []
    for row in data.pop("shots"):
        row = dict(row)
        row.update(panel=local(row["panel"]), layers={k: local(v) for k, v in row.get("layers", {}).items()},
                   variants={k: local(v) for k, v in row.get("variants", {}).items()},
                   speakers=tuple(row.get("speakers", ())), clip=tuple(local(p) for p in row.get("clip", ())),
                   captions=tuple(CaptionCue(**c) for c in row.get("captions", ())),
                   takes=tuple(TakeCue(wav=local(t["wav"]), start=t["start"], visemes=local(t.get("visemes")),
                                       speaker=t.get("speaker", "")) for t in row.get("takes", ())))
        shots.append(ShotSpec(**row))
    data.update(music=local(data.get("music")), font=local(data.get("font")))
    return EpisodeSpec(shots=tuple(shots), **data)


def _preview_work() -> WorkFn:
    return render_preview_job


def render_preview_job(payload: dict[str, Any], ctx: WorkContext) -> WorkOutput:
    """The preview work function: render the spec with ffmpeg in the job's scratch folder (its own
    segment cache) and return the MP4 as bytes; the studio writes it under assets/jobs/preview/."""
    from tools.render import episode_duration, render_episode

    spec = preview_episode(payload, ctx)
    ctx.progress(0.0, "rendering the preview")
    result = render_episode(spec, ctx.scratch / "out", ctx.scratch / "cache",
                            progress=lambda fraction, message: ctx.progress(0.95 * fraction, message))
    duration = episode_duration(spec)
    return WorkOutput(files={PREVIEW_FILE: Path(result.mp4).read_bytes()},
                      data={"preview": PREVIEW_FILE, "duration_s": round(duration, 3)})


def preview_role() -> Role:
    """The motion-preview role (ffmpeg, no model): the cpu lane in-process, a CPU actor on Ray."""
    return Role("preview", _preview_work, lane="cpu")
