"""Motion and the cut: per-scene motion proposals (with a low-res preview), and the episode spec
that `tools.render.render_episode` turns into the finished 9:16 MP4.

Timing comes from the approved takes: a shot lasts as long as its lines plus pacing pads, or its
planned duration when it has no lines (or when that is longer).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.context import DirectorContext, as_project
from agent.state import Task
from agent.storyboard import image_record_id, shots_of
from agent.voices import PRIMARY_LANGUAGE, line_text, take_id
from memory.canon import Canon, Record
from memory.errors import InputError, StoryreelError
from memory.project import Project
from tools.speech_text import speakable

LEAD_IN_S = 0.35      # silence before a shot's first line
GAP_S = 0.25          # between lines in one shot
TAIL_S = 0.45         # after the last line
GRADE_WORDS = (("night", "night"), ("dark", "night"), ("moon", "night"), ("sunset", "warm"), ("warm", "warm"),
               ("golden", "warm"), ("cold", "cool"), ("cool", "cool"), ("rain", "cool"), ("sad", "desaturated"),
               ("grief", "desaturated"), ("memory", "desaturated"), ("flashback", "desaturated"))
DRAMATIC = ("shout", "angry", "surprised")



def motion_id(scene_id: str) -> str:
    return f"motion-{scene_id}"


def episode_scenes(canon: Canon, episode: int = 1) -> list[Record]:
    return sorted(canon.children("scene", "episode", episode), key=lambda r: r.data.get("number", 0))


def next_cut_task(canon: Canon, ctx: DirectorContext) -> Task | None:
    """A motion proposal for each scene whose panels and takes are all accepted and has none yet
    (its timing comes from the takes: before they exist the card could only fail); for the episode
    being planned (agent.episodes), else every started episode in order."""
    from agent.episodes import planning_episodes

    if ctx.painter is None:
        return None
    for scene in [sc for ep in planning_episodes(canon) for sc in episode_scenes(canon, ep)]:
        shots = shots_of(canon, scene.id)
        voiced = all(canon.live(take_id(str(ln.get("id")), PRIMARY_LANGUAGE)) for ln in scene.data.get("lines", []))
        if shots and voiced and all(canon.live(image_record_id("panel", s.id)) for s in shots) \
                and not canon.live(motion_id(scene.id)):
            return {"kind": "motion", "target_id": None, "scene_id": scene.id}
    return None


def _lines_of(scene: Record, shot: Record) -> list[dict[str, Any]]:
    by_id = {ln.get("id"): ln for ln in scene.data.get("lines", [])}
    return [by_id[i] for i in shot.data.get("line_ids", []) if i in by_id]


def propose_motion(canon: Canon, scene_id: str, notes: list[str]) -> dict[str, Any]:
    """Motion per shot from the shot plan: camera move, easing, grade from mood/lighting words,
    vignette, flicker, shake and impact flash for dramatic lines, transition, pacing pad."""
    scene = canon.get(scene_id)
    note = " ".join(notes[-3:]).lower()
    shots = []
    for shot in shots_of(canon, scene_id):
        d = shot.data
        words = f"{d.get('lighting', '')} {d.get('mood', '')} {scene.data.get('location', '')} {note}".lower()
        grade = next((g for w, g in GRADE_WORDS if re.search(rf"\b{w}", words)), "none")
        emotions = {str(ln.get("emotion", "")) for ln in _lines_of(scene, shot)}
        dramatic = bool(emotions & set(DRAMATIC)) or d.get("camera_move") == "shake"
        shots.append({"shot_id": shot.id, "camera_move": d.get("camera_move", "static"),
                      "ease": "in_out", "grade": grade, "vignette": grade in ("night", "desaturated") or "vignette" in note,
                      "flicker": bool(re.search(r"\b(candle|flicker|storm|lightning|neon)", words)),
                      "flash": dramatic and "no flash" not in note,
                      "transition": d.get("transition", "cut"), "pad_s": 0.0 if "tight" in note else 0.3})
    return {"scene_id": scene_id, "shots": shots}


def shot_timing(canon: Canon, project_root: Project | Path, scene: Record, shot: Record, pad_s: float,
                language: str) -> tuple[float, list[tuple[Path, float, float, str, str]]]:
    """(duration, [(take wav, start, end, caption text, speaker)]) for one shot in `language`."""
    project = as_project(project_root)
    t = LEAD_IN_S
    cues = []
    for line in _lines_of(scene, shot):
        take = canon.live(take_id(line["id"], language))
        if take is None:
            raise InputError(f"line {line['id']} has no accepted {language} take yet; voice it before the cut")
        wav = project.resolve(take.data["path"])
        dur = float(take.data.get("duration_s", 0))
        if dur <= 0:
            raise InputError(f"the take of {line['id']} ({wav}) has zero length; redo or upload it")
        text = speakable(line_text(canon, line, language) or str(line.get("line", "")))   # as it was said
        cues.append((wav, t, t + dur, text, str(line.get("speaker", ""))))
        t += dur + GAP_S
    spoken = (t - GAP_S + TAIL_S) if cues else 0.0
    return max(float(shot.data.get("duration_s", 3.0)) if not cues else 0.0, spoken) + pad_s, cues


CAPTION_MODES = ("subtitle", "bubble")


@dataclass(frozen=True)
class RenderOptions:
    """The finished look, from project.toml ``[render]``: ``guides`` keeps the storyboard's guide
    marks (shot id, framing, camera arrows, name tags, "ANIMATIC SKETCH") in the final MP4;
    ``captions`` shows each line as a burned ``"subtitle"`` or as the panel's speech ``"bubble"``."""

    guides: bool = False
    captions: str = "subtitle"


def render_options(project_root: Project | Path) -> RenderOptions:
    """The project's ``[render]`` settings (defaults when absent); InputError names a bad value."""
    import tomllib

    project = as_project(project_root)
    try:    # read now, so an edit made while the studio runs counts at the next render
        settings = tomllib.loads((project.root / "project.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        settings = project.settings or {}
    table = settings.get("render", {})
    if not isinstance(table, dict):
        raise InputError(f"project.toml [render] is {table!r}, not a table; write it as [render] with "
                         "guides = false and captions = \"subtitle\"")
    guides, captions = table.get("guides", False), table.get("captions", "subtitle")
    if not isinstance(guides, bool):
        raise InputError(f"project.toml [render] guides = {guides!r} is not true or false; set guides = false "
                         "for a clean cut or true to keep the storyboard guides")
    if captions not in CAPTION_MODES:
        raise InputError(f"project.toml [render] captions = {captions!r} is unknown; use \"subtitle\" "
                         "(burned subtitles) or \"bubble\" (the panel's speech bubble)")
    return RenderOptions(guides=guides, captions=captions)


def _same_words(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def shot_picture(panel: Path, layers: dict[str, Path], variants: dict[str, Path], lines: list[tuple[str, str]], *,
                 guides: bool, captions: str) -> tuple[Path, dict[str, Path], bool]:
    """(panel image, layers, burn subtitles?) for one shot of a render.

    The storyboard's guides and speech bubble are layers of their own (``guides``, ``bubble``; an
    older painter's ``overlay`` holds both and is never used in a render). A line is shown once:
    in ``"bubble"`` mode the bubble layer is used, and the subtitle not burned, only when the shot
    has exactly one line and the bubble's words (noted in its PNG) are that line's text in this
    language — otherwise the subtitle is burned and the bubble left out, so the two never disagree.
    The SRT/VTT list every line either way. ``lines``: (caption text, speaker) per line."""
    from tools.backends._draw import png_text
    from tools.backends.animatic import BUBBLE_TEXT_KEY
    from tools.render.spec import OVERLAY_LAYERS

    picked = {k: v for k, v in layers.items() if k not in OVERLAY_LAYERS}
    if guides and "guides" in layers:
        picked["guides"] = layers["guides"]
    burn = True
    if captions == "bubble" and "bubble" in layers and len(lines) == 1:
        words = png_text(layers["bubble"]).get(BUBBLE_TEXT_KEY)
        text, speaker = lines[0]
        if words is not None and (_same_words(words, text) or _same_words(words, f"{speaker}: {text}")):
            picked["bubble"] = layers["bubble"]
            burn = False
    return variants.get("clean", panel), picked, burn


def episode_spec(canon: Canon, project_root: Project | Path, *, episode: int = 1, language: str = PRIMARY_LANGUAGE,
                 scenes: list[str] | None = None, width: int = 1080, height: int = 1920, fps: int = 24,
                 music: Path | None = None, preset: str = "veryfast", require_motion: bool = True,
                 guides: bool = False, captions: str = "subtitle", cold_open: bool = True) -> Any:
    """The render spec of an episode (or of some scenes, for a preview) from accepted canon.

    A whole episode (no ``scenes``) with an accepted "previously on" (``cold_open``;
    agent.kinds.recap) starts with it: pieces of the episode before's shots, then the episode.

    Every stored path (panels, layers, takes, clip frames) goes through the project's resolver, so
    a record revised or reverted to a path outside the project is refused, never drawn.

    The picture of each shot is the panel's clean look (backdrop and characters) plus, with
    ``guides``, the storyboard's guide layer; each line is shown once (see ``shot_picture``)."""
    from tools.lipsync import track_path
    from tools.render import CaptionCue, EpisodeSpec, ShotSpec, TakeCue

    if captions not in CAPTION_MODES:
        raise InputError(f"captions {captions!r} is unknown; use one of {', '.join(CAPTION_MODES)}")
    project = as_project(project_root)
    resolve = project.resolve

    shot_specs = []
    chosen = [s for s in episode_scenes(canon, episode) if scenes is None or s.id in scenes]
    if not chosen:
        raise InputError(f"episode {episode} has no scenes to cut yet")
    for scene in chosen:
        motion_rec = canon.live(motion_id(scene.id))
        if motion_rec is None and require_motion:
            raise InputError(f"scene {scene.id} has no accepted motion yet; review its motion first")
        motion = {m["shot_id"]: m for m in (motion_rec.data["shots"] if motion_rec else
                                             propose_motion(canon, scene.id, [])["shots"])}
        for shot in shots_of(canon, scene.id):
            panel = canon.live(image_record_id("panel", shot.id))
            if panel is None:
                raise InputError(f"shot {shot.id} has no accepted panel yet; pick one in the storyboard")
            m = motion.get(shot.id) or propose_motion(canon, scene.id, [])["shots"][0]
            duration, cues = shot_timing(canon, project, scene, shot, float(m.get("pad_s", 0.3)), language)
            speakers, ids = [], {}
            for _, _, _, _, speaker in cues:
                char = canon.find_by_name("character", speaker)
                if char is not None and char.id not in speakers:
                    speakers.append(char.id)
                if char is not None:
                    ids[speaker] = char.id   # each take moves its own speaker's mouth
            picture, layers, burn = shot_picture(
                resolve(panel.data["path"]), {k: resolve(v) for k, v in panel.data.get("layers", {}).items()},
                {k: resolve(v) for k, v in panel.data.get("variants", {}).items()},
                [(txt, spk) for _, _, _, txt, spk in cues], guides=guides, captions=captions)
            shot_specs.append(ShotSpec(
                shot_id=shot.id, panel=picture, duration=round(duration, 3),
                camera_move=m.get("camera_move", "static"), layers=layers,
                variants={k: resolve(v) for k, v in panel.data.get("variants", {}).items()},
                speakers=tuple(speakers), transition_in=m.get("transition", "cut"), grade=m.get("grade", "none"),
                vignette=bool(m.get("vignette")), flicker=bool(m.get("flicker")), flash=bool(m.get("flash")),
                burn_captions=burn,
                captions=tuple(CaptionCue(text=txt, start=a, end=b, speaker=spk) for _, a, b, txt, spk in cues),
                takes=tuple(TakeCue(wav=wav, start=a, visemes=track_path(wav) if track_path(wav).is_file() else None,
                                    speaker=ids.get(spk, spk)) for wav, a, _, _, spk in cues),
                seed=shot_seed(shot.id), ease=m.get("ease", "in_out"),
                clip=tuple(resolve(p) for p in m.get("clip", [])), clip_fps=float(m.get("clip_fps", 8.0))))
    if cold_open and scenes is None and episode >= 2:
        from dataclasses import replace

        from agent.kinds.recap import cold_open_shots

        recap = cold_open_shots(canon, project, episode, language=language, guides=guides, captions=captions)
        if recap and shot_specs:   # the episode then starts on a cut, so it lasts exactly as long as before
            shot_specs = [*recap, replace(shot_specs[0], transition_in="cut"), *shot_specs[1:]]
    series = canon.live("series")
    return EpisodeSpec(shots=tuple(shot_specs), fps=fps, width=width, height=height, music=music,
                       language=language, preset=preset,
                       title=f"{series.data.get('title') if series else ''} — episode {episode}")


CLIP_FPS = 8    # image-to-video frames per second (clip frames play at this rate in the cut)


def shot_seed(shot_id: str) -> int:
    """The shot's stable seed (its clip, its camera shake): from its id, so a redo keeps it."""
    return int(hashlib.sha256(shot_id.encode()).hexdigest()[:6], 16)


def clip_request(canon: Canon, shot_id: str) -> tuple[str, str, int]:
    """(project-relative source picture, prompt, seed) for animating one shot: the panel's clean look
    (no storyboard guides, no bubble; the clip plays in the finished cut), a prompt from its
    characters, mood, lighting and the art style, and the shot's seed. The one place both the
    in-step animation (`animate_shots`) and the clip jobs (`agent.kinds.motion.clip_specs`) read."""
    art = canon.get("style").data.get("art_style", "") if canon.live("style") else ""
    shot = canon.get(shot_id)
    panel = canon.get(image_record_id("panel", shot.id))
    who = ", ".join(f"{c.get('name')} {c.get('expression', '')}" for c in shot.data.get("characters", []))
    prompt = ", ".join(filter(None, [who, shot.data.get("mood", ""), shot.data.get("lighting", ""), art,
                                     "subtle motion, hair and cloth sway"]))
    source = panel.data.get("variants", {}).get("clean") or panel.data["path"]
    return str(source), prompt, shot_seed(shot.id)


def animate_shots(ctx: DirectorContext, motion: dict[str, Any], proposal_id: str) -> None:
    """With an image-to-video backend configured, animate each panel into clip frames (in place)."""
    if ctx.animator is None:
        return
    for m in motion["shots"]:
        source, prompt, seed = clip_request(ctx.canon, m["shot_id"])
        frames = ctx.animator.animate(ctx.path(source), prompt, ctx.clip_frames, CLIP_FPS, seed,
                                      ctx.path(Path("assets", "drafts", "motion", m["shot_id"], proposal_id)))
        m["clip"] = [ctx.rel(f) for f in frames]
        m["clip_fps"] = float(CLIP_FPS)


def preview_spec(ctx: DirectorContext, scene_id: str, motion: dict[str, Any]) -> Any:
    """The `EpisodeSpec` of a scene's low-res (270×480) preview with the proposed `motion` (and its
    clips): what `render_preview` renders in the step and a "preview" job renders on the cpu lane
    (`tools.jobs.roles.preview_job`). A preview keeps the storyboard's guides."""
    from dataclasses import replace

    episode = int(ctx.canon.get(scene_id).data.get("episode") or 1)   # the scene's own episode
    spec = episode_spec(ctx.canon, ctx.project, episode=episode, scenes=[scene_id], width=270, height=480, fps=24,
                        require_motion=False, preset="ultrafast", guides=True,
                        captions=render_options(ctx.project).captions)
    by_id = {m["shot_id"]: m for m in motion["shots"]}
    shots = tuple(replace(s, camera_move=by_id[s.shot_id]["camera_move"], grade=by_id[s.shot_id]["grade"],
                          vignette=by_id[s.shot_id]["vignette"], flicker=by_id[s.shot_id]["flicker"],
                          flash=by_id[s.shot_id]["flash"], transition_in=by_id[s.shot_id]["transition"],
                          clip=tuple(ctx.path(p) for p in by_id[s.shot_id].get("clip", [])),
                          clip_fps=float(by_id[s.shot_id].get("clip_fps", CLIP_FPS)))
                  for s in spec.shots)
    return replace(spec, shots=shots)


def render_preview(ctx: DirectorContext, scene_id: str, motion: dict[str, Any], proposal_id: str) -> str:
    """Render a scene's preview (`preview_spec`) in the step; returns its relative path."""
    from tools.render import render_episode

    out = ctx.path(Path("assets", "drafts", "motion", scene_id, proposal_id))
    result = render_episode(preview_spec(ctx, scene_id, motion), out, ctx.path(Path("state", "render-cache")))
    return ctx.rel(result.mp4)


def render_dir(project_root: Project | Path, episode: int = 1, language: str = PRIMARY_LANGUAGE,
               branch: str = "main") -> Path:
    """Where an episode's render lives: renders/epNN/ (primary language) or renders/epNN/LANG/; a
    branch's (memory/branches.py) under renders/branches/<name>/epNN/, so main's stay as they are."""
    from memory.branches import render_dir as line_render_dir

    project = as_project(project_root)
    folder = line_render_dir(project, episode, branch)
    return folder if language == PRIMARY_LANGUAGE else project.resolve(folder / language)


RENDER_FILES = {"mp4": "episode.mp4", "srt": "episode.srt", "vtt": "episode.vtt", "otio": "timeline.otio",
                "contact_sheet": "contact_sheet.png"}


def last_render(project_root: Project | Path, episode: int = 1,
                language: str = PRIMARY_LANGUAGE, branch: str = "main") -> dict[str, Path] | None:
    """The files of the episode's last finished render ({"mp4", "srt", "vtt", "otio", "contact_sheet"}
    → path, only those present), or None when it was never rendered: what the Episode tab shows
    after a restart. A render in progress or killed never replaces episode.mp4 half-written."""
    try:
        folder = render_dir(project_root, episode, language, branch)
    except (StoryreelError, ValueError):
        return None
    if not (folder / RENDER_FILES["mp4"]).is_file():
        return None
    return {key: folder / name for key, name in RENDER_FILES.items() if (folder / name).is_file()}


def render_warnings(canon: Canon, project_root: Project | Path, *, episode: int = 1,
                    language: str = PRIMARY_LANGUAGE, painter: str | None = None) -> list[str]:
    """What the cut of ``episode`` in ``language`` would use that is missing or out of date, one
    sentence per item naming it: scenes without shots or motion, shots without an accepted panel or
    with a stale one (its shot, characters, style or painter changed), lines without an accepted
    take or with a stale one. Empty when everything is accepted and current. ``painter``: the
    project's painter name, so panels drawn by another one count as stale."""
    return [text for _, text in _cut_problems(canon, as_project(project_root), episode, language, painter)]


def cut_missing(canon: Canon, project_root: Project | Path, *, episode: int = 1, language: str = PRIMARY_LANGUAGE,
                painter: str | None = None, motion: bool = True) -> list[str]:
    """What stops the cut of ``episode`` (one sentence each naming the scene, shot or line): missing
    panels, takes, files, and (with ``motion``; a preview does without) motion. Empty: it can render."""
    return [text for kind, text in _cut_problems(canon, as_project(project_root), episode, language, painter)
            if kind == "missing" and (motion or "no accepted motion" not in text)]


def _cut_problems(canon: Canon, project: Project, episode: int, language: str,
                  painter: str | None) -> list[tuple[str, str]]:
    """("missing" | "stale", sentence) for everything ``render_warnings`` reports."""
    from agent.storyboard import image_status
    from agent.voices import take_status

    out: list[tuple[str, str]] = []
    scenes = episode_scenes(canon, episode)
    if not scenes:
        return [("missing", f"episode {episode} has no scenes yet")]
    for scene in scenes:
        shots = shots_of(canon, scene.id)
        if not shots:
            out.append(("stale", f"scene {scene.id} has no shot plan yet; it is left out of the cut"))
            continue
        if canon.live(motion_id(scene.id)) is None:
            out.append(("missing", f"scene {scene.id} has no accepted motion yet; review its motion"))
        for shot in shots:
            panel = canon.live(image_record_id("panel", shot.id))
            if panel is None:
                out.append(("missing", f"shot {shot.id} has no accepted panel; pick one in the storyboard"))
            elif not _exists(project, panel.data.get("path")):
                out.append(("missing", f"shot {shot.id}: panel file {panel.data.get('path')} is missing; redraw it"))
            else:
                status, reasons = image_status(canon, panel, painter)
                if status == "stale":
                    out.append(("stale", f"shot {shot.id}: panel is stale ({'; '.join(reasons)}); redraw it"))
            for line in _lines_of(scene, shot):
                who = f"line {line.get('id')} ({line.get('speaker', '?')})"
                take = canon.live(take_id(str(line.get("id")), language))
                if take is None:
                    out.append(("missing", f"{who} has no accepted {language} take; voice it"))
                elif not _exists(project, take.data.get("path")):
                    out.append(("missing", f"{who}: take file {take.data.get('path')} is missing; redo it"))
                else:
                    status, reasons = take_status(canon, take)
                    if status == "stale":
                        out.append(("stale", f"{who}: {language} take is stale ({'; '.join(reasons)}); redo it"))
    return out


def _exists(project: Project, rel: Any) -> bool:
    try:
        return bool(rel) and project.resolve(str(rel)).is_file()
    except (StoryreelError, ValueError, OSError):
        return False


def render_cut(canon: Canon, project_root: Project | Path, *, episode: int = 1, language: str = PRIMARY_LANGUAGE,
               music: Path | None = None, progress: Callable[[float, str], None] | None = None,
               guides: bool | None = None, captions: str | None = None, painter: str | None = None) -> Any:
    """Render the episode into renders/epNN[/LANG]/ with segments cached in state/render-cache.

    The look follows project.toml ``[render]`` (``guides``, ``captions``) unless given here. What is
    stale is named before any work (``render_warnings``): each warning goes to ``progress`` as
    "warning: …" and comes back in ``result.warnings``; a missing panel or take stops the render
    with an error that names it."""
    from dataclasses import replace

    from tools.render import render_episode

    if music is not None and not Path(music).is_file():
        raise InputError(f"music file {music} does not exist; choose an audio file or none")
    project = as_project(project_root)
    if not isinstance(episode, int) or isinstance(episode, bool) or episode < 1:
        raise InputError(f"episode {episode!r} is not an episode number; use 1, 2, 3…")
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", language or ""):
        raise InputError(f"language {language!r} is not a language code; use one like en, ja or pt-BR")
    options = render_options(project)
    problems = _cut_problems(canon, project, episode, language, painter)
    missing = [text for kind, text in problems if kind == "missing"]
    if missing:
        raise InputError(f"episode {episode} cannot be cut yet: " + "; ".join(missing))
    warnings = [text for _, text in problems]
    spec = episode_spec(canon, project, episode=episode, language=language, music=music,
                        guides=options.guides if guides is None else guides,
                        captions=options.captions if captions is None else captions)
    for warning in warnings:
        if progress is not None:
            progress(0.0, f"warning: {warning}")
    result = render_episode(spec, render_dir(project, episode, language, getattr(canon, "branch", "main")),
                            project.resolve(Path("state", "render-cache")), progress=progress)
    write_authorship(canon, project, episode, Path(result.otio))
    return replace(result, warnings=tuple(warnings))


def write_authorship(canon: Canon, project: Project, episode: int, otio_path: Path) -> dict[str, Path]:
    """The episode's authorship report (HTML, PDF, JSON) next to a finished cut, and each shot's
    authorship in the timeline's clip metadata. A report that fails is logged and left out: it
    never fails the render. Returns format -> path of what was written."""
    import logging

    try:
        from memory.ledger import Ledger
        from ui.report import write_render_report

        return write_render_report(canon, Ledger(project.ledger_path), project, episode, otio_path.parent,
                                   otio_path)
    except Exception as exc:  # the cut is done; the report is an extra, whatever failed in it
        logging.getLogger(__name__).warning("the authorship report of episode %s was not written: %s",
                                            episode, exc, exc_info=True)
        return {}
