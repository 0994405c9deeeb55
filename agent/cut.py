"""Motion and the cut: per-scene motion proposals (with a low-res preview), and the episode spec
that `tools.render.render_episode` turns into the finished 9:16 MP4.

Timing comes from the approved takes: a shot lasts as long as its lines plus pacing pads, or its
planned duration when it has no lines (or when that is longer).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Callable

from agent.context import DirectorContext
from agent.state import Task
from agent.storyboard import image_record_id, ordered_scenes, shots_of
from agent.voices import PRIMARY_LANGUAGE, line_text, take_id
from memory.canon import Canon, Record
from memory.errors import InputError

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
    return [s for s in ordered_scenes(canon) if s.data.get("episode") == episode]


def next_cut_task(canon: Canon, ctx: DirectorContext) -> Task | None:
    """A motion proposal for each scene whose panels are all accepted and has none yet."""
    if ctx.painter is None:
        return None
    for scene in episode_scenes(canon):
        shots = shots_of(canon, scene.id)
        if shots and all(canon.live(image_record_id("panel", s.id)) for s in shots) \
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


def shot_timing(canon: Canon, project_root: Path, scene: Record, shot: Record, pad_s: float,
                language: str) -> tuple[float, list[tuple[Path, float, float, str, str]]]:
    """(duration, [(take wav, start, end, caption text, speaker)]) for one shot in `language`."""
    t = LEAD_IN_S
    cues = []
    for line in _lines_of(scene, shot):
        take = canon.live(take_id(line["id"], language))
        if take is None:
            raise InputError(f"line {line['id']} has no accepted {language} take yet; voice it before the cut")
        wav = project_root / take.data["path"]
        dur = float(take.data.get("duration_s", 0))
        if dur <= 0:
            raise InputError(f"the take of {line['id']} ({wav}) has zero length; redo or upload it")
        text = line_text(canon, line, language) or str(line.get("line", ""))
        cues.append((wav, t, t + dur, text, str(line.get("speaker", ""))))
        t += dur + GAP_S
    spoken = (t - GAP_S + TAIL_S) if cues else 0.0
    return max(float(shot.data.get("duration_s", 3.0)) if not cues else 0.0, spoken) + pad_s, cues


def episode_spec(canon: Canon, project_root: Path, *, episode: int = 1, language: str = PRIMARY_LANGUAGE,
                 scenes: list[str] | None = None, width: int = 1080, height: int = 1920, fps: int = 24,
                 music: Path | None = None, preset: str = "veryfast", require_motion: bool = True) -> Any:
    """The render spec of an episode (or of some scenes, for a preview) from accepted canon."""
    from tools.render import CaptionCue, EpisodeSpec, ShotSpec, TakeCue

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
            duration, cues = shot_timing(canon, project_root, scene, shot, float(m.get("pad_s", 0.3)), language)
            speakers = []
            for _, _, _, _, speaker in cues:
                char = canon.find_by_name("character", speaker)
                if char is not None and char.id not in speakers:
                    speakers.append(char.id)
            shot_specs.append(ShotSpec(
                shot_id=shot.id, panel=project_root / panel.data["path"], duration=round(duration, 3),
                camera_move=m.get("camera_move", "static"),
                layers={k: project_root / v for k, v in panel.data.get("layers", {}).items()},
                variants={k: project_root / v for k, v in panel.data.get("variants", {}).items()},
                speakers=tuple(speakers), transition_in=m.get("transition", "cut"), grade=m.get("grade", "none"),
                vignette=bool(m.get("vignette")), flicker=bool(m.get("flicker")), flash=bool(m.get("flash")),
                captions=tuple(CaptionCue(text=txt, start=a, end=b, speaker=spk) for _, a, b, txt, spk in cues),
                takes=tuple(TakeCue(wav=wav, start=a) for wav, a, _, _, _ in cues),
                seed=int(hashlib.sha256(shot.id.encode()).hexdigest()[:6], 16), ease=m.get("ease", "in_out"),
                clip=tuple(project_root / p for p in m.get("clip", [])), clip_fps=float(m.get("clip_fps", 8.0))))
    series = canon.live("series")
    return EpisodeSpec(shots=tuple(shot_specs), fps=fps, width=width, height=height, music=music,
                       language=language, preset=preset,
                       title=f"{series.data.get('title') if series else ''} — episode {episode}")


def animate_shots(ctx: DirectorContext, motion: dict[str, Any], proposal_id: str) -> None:
    """With an image-to-video backend configured, animate each panel into clip frames (in place)."""
    if ctx.animator is None:
        return
    canon = ctx.canon
    art = canon.get("style").data.get("art_style", "") if canon.live("style") else ""
    for m in motion["shots"]:
        shot = canon.get(m["shot_id"])
        panel = canon.get(image_record_id("panel", shot.id))
        who = ", ".join(f"{c.get('name')} {c.get('expression', '')}" for c in shot.data.get("characters", []))
        prompt = ", ".join(filter(None, [who, shot.data.get("mood", ""), shot.data.get("lighting", ""), art,
                                         "subtle motion, hair and cloth sway"]))
        frames = ctx.animator.animate(ctx.project_root / panel.data["path"], prompt, ctx.clip_frames, 8,
                                      int(hashlib.sha256(shot.id.encode()).hexdigest()[:6], 16),
                                      ctx.project_root / "assets" / "drafts" / "motion" / shot.id / proposal_id)
        m["clip"] = [str(Path(f).resolve().relative_to(ctx.project_root.resolve())) for f in frames]
        m["clip_fps"] = 8.0


def render_preview(ctx: DirectorContext, scene_id: str, motion: dict[str, Any], proposal_id: str) -> str:
    """A small (270×480) preview clip of one scene with the proposed motion; returns its relative path."""
    from dataclasses import replace

    from tools.render import render_episode

    spec = episode_spec(ctx.canon, ctx.project_root, scenes=[scene_id], width=270, height=480, fps=24,
                        require_motion=False, preset="ultrafast")
    by_id = {m["shot_id"]: m for m in motion["shots"]}
    shots = tuple(replace(s, camera_move=by_id[s.shot_id]["camera_move"], grade=by_id[s.shot_id]["grade"],
                          vignette=by_id[s.shot_id]["vignette"], flicker=by_id[s.shot_id]["flicker"],
                          flash=by_id[s.shot_id]["flash"], transition_in=by_id[s.shot_id]["transition"],
                          clip=tuple(ctx.project_root / p for p in by_id[s.shot_id].get("clip", [])),
                          clip_fps=float(by_id[s.shot_id].get("clip_fps", 8.0)))
                  for s in spec.shots)
    out = ctx.project_root / "assets" / "drafts" / "motion" / scene_id / proposal_id
    result = render_episode(replace(spec, shots=shots), out, ctx.project_root / "state" / "render-cache")
    return str(Path(result.mp4).resolve().relative_to(ctx.project_root.resolve()))


def render_cut(canon: Canon, project_root: Path, *, episode: int = 1, language: str = PRIMARY_LANGUAGE,
               music: Path | None = None, progress: Callable[[float, str], None] | None = None) -> Any:
    """Render the episode into renders/epNN[/LANG]/ with segments cached in state/render-cache."""
    from tools.render import render_episode

    if music is not None and not Path(music).is_file():
        raise InputError(f"music file {music} does not exist; choose an audio file or none")
    spec = episode_spec(canon, project_root, episode=episode, language=language, music=music)
    out = project_root / "renders" / f"ep{episode:02d}" / ("" if language == PRIMARY_LANGUAGE else language)
    return render_episode(spec, out, project_root / "state" / "render-cache", progress=progress)
