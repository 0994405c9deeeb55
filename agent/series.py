"""The series at a glance: each outline episode's production status, and the season export.

``episode_status`` answers "where is episode N?" from canon and the renders on disk with indexed
lookups only (``Canon.children`` by episode and scene), so a board of 30 episodes stays cheap.
``export_season`` gathers every rendered episode's files into one folder with one season timeline
(OpenTimelineIO) and one season contact sheet; an episode without a render is named, not fatal.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.context import as_project
from agent.cut import _cut_problems, episode_scenes, last_render, motion_id
from agent.storyboard import image_record_id, shots_of
from agent.voices import PRIMARY_LANGUAGE, take_id
from memory.canon import Canon, Record
from memory.errors import InputError, RecordNotFoundError, StoryreelError
from memory.project import Project

#: the board's statuses, in production order ("stale": something it uses changed since it was made)
STATUSES = ("outline", "writing", "storyboard", "voiced", "cut", "stale")
#: data keys that change no content (an ear check, a renumbering): not a reason to call a render stale
BOOKKEEPING = ("id", "check", "made_from", "index", "number", "line_ids")
EXPORTED = ("mp4", "srt", "vtt", "otio")
SEASON_TIMELINE = "season.otio"
SEASON_SHEET = "season_contact_sheet.png"


@dataclass(frozen=True)
class EpisodeStatus:
    episode: int
    title: str
    status: str                  # one of STATUSES
    reasons: tuple[str, ...]     # what keeps it at this status (missing or stale items), named
    render: Path | None          # renders/epNN[/LANG]/episode.mp4 when it was rendered


@dataclass(frozen=True)
class SeasonExport:
    folder: Path
    episodes: tuple[int, ...]    # the episodes whose files were copied, in order
    files: tuple[Path, ...]      # every file written (episode files, timeline, contact sheet)
    timeline: Path
    contact_sheet: Path
    missing: tuple[str, ...]     # one sentence per episode left out (no render yet)


def outline_episodes(canon: Canon) -> dict[int, dict[str, Any]]:
    """The outline's episodes by number ({} before an outline is accepted)."""
    outline = canon.live("outline")
    out: dict[int, dict[str, Any]] = {}
    for ep in (outline.data.get("episodes") or []) if outline else []:
        try:
            out[int(ep.get("number"))] = dict(ep)
        except (TypeError, ValueError):
            continue
    return out


def started_episodes(canon: Canon) -> list[int]:
    """Episodes started (agent.episodes: the director started them; episode 1 always is) or with
    accepted beats, in order."""
    from agent.episodes import started_episodes as marked_started

    numbers = set(marked_started(canon))
    for beats in canon.list("beats"):
        try:
            numbers.add(int(beats.data.get("episode")))
        except (TypeError, ValueError):
            continue
    return sorted(numbers)


def series_episodes(canon: Canon) -> list[int]:
    """Every episode the series knows: the outline's, plus any started beyond it (none before an
    outline or beats exist)."""
    known = set(outline_episodes(canon)) | {b.data.get("episode") for b in canon.list("beats")}
    return sorted(n for n in known | (set(started_episodes(canon)) if known else set())
                  if isinstance(n, int) and not isinstance(n, bool))


def latest_started_episode(canon: Canon) -> int:
    """The episode the studio shows first: the last one started (1 before any beats)."""
    return max(started_episodes(canon), default=1)


def check_episode(episode: Any) -> int:
    if not isinstance(episode, int) or isinstance(episode, bool) or episode < 1:
        raise InputError(f"episode {episode!r} is not an episode number; use 1, 2, 3…")
    return episode


def episode_status(canon: Canon, project: Project | Path, episode: int, *, language: str = PRIMARY_LANGUAGE,
                   painter: str | None = None) -> EpisodeStatus:
    """Where ``episode`` stands, one of STATUSES:

    outline (only its logline), writing (started or beats accepted; scenes or shot plans missing), storyboard
    (every scene planned; panels or takes missing), voiced (every panel and take accepted, not cut
    yet), cut (rendered, and nothing it used changed since), stale (an accepted panel or take is out
    of date, the outline's logline for it changed after its beats, or canon changed after its
    render). ``reasons`` names what keeps it there."""
    check_episode(episode)
    project = as_project(project)
    title = str(outline_episodes(canon).get(episode, {}).get("title") or f"Episode {episode}")
    files = last_render(project, episode, language)
    render = files["mp4"] if files else None
    beats = canon.live(f"beats-ep{episode}")
    scenes = episode_scenes(canon, episode)
    if beats is None and not scenes:
        from agent.episodes import started_episodes as marked_started

        if episode > 1 and episode in marked_started(canon):
            return EpisodeStatus(episode, title, "writing", ("started; its beats are not accepted yet",), render)
        return EpisodeStatus(episode, title, "outline", ("no beats yet",), render)
    outline_change = _outline_changed_since(canon, episode, beats)
    if outline_change:
        return EpisodeStatus(episode, title, "stale", (outline_change,), render)
    if not scenes:
        return EpisodeStatus(episode, title, "writing", ("no scenes yet",), render)
    unplanned = [s.id for s in scenes if not shots_of(canon, s.id)]
    if unplanned:
        return EpisodeStatus(episode, title, "writing",
                             tuple(f"scene {sid} has no shot plan yet" for sid in unplanned), render)
    problems = _cut_problems(canon, project, episode, language, painter)
    stale = tuple(text for kind, text in problems if kind == "stale")
    if stale:
        return EpisodeStatus(episode, title, "stale", stale, render)
    missing = tuple(text for kind, text in problems if kind == "missing")
    unpictured = [t for t in missing if "panel" in t or " take" in t]
    if unpictured:
        return EpisodeStatus(episode, title, "storyboard", tuple(unpictured), render)
    if render is None:
        return EpisodeStatus(episode, title, "voiced", missing or ("not rendered yet",), None)
    changed = _changed_since(canon, scenes, language, render.stat().st_mtime)
    if changed:
        return EpisodeStatus(episode, title, "stale",
                             tuple(f"{rid} changed after the render; render again" for rid in changed), render)
    return EpisodeStatus(episode, title, "cut", (), render)


def series_board(canon: Canon, project: Project | Path, *, language: str = PRIMARY_LANGUAGE,
                 painter: str | None = None) -> list[EpisodeStatus]:
    """One EpisodeStatus per episode of the series, in order."""
    return [episode_status(canon, project, n, language=language, painter=painter) for n in series_episodes(canon)]


def _when(record: Record) -> float:
    return datetime.fromisoformat(record.created_at).timestamp()


def _outline_changed_since(canon: Canon, episode: int, beats: Record | None) -> str:
    """A sentence when the outline's title or logline for ``episode`` changed after its beats were
    accepted (the beats, and what follows from them, were written for the old one); "" otherwise."""
    outline = canon.live("outline")
    if beats is None or outline is None or outline.created_at <= beats.created_at:
        return ""
    then = None
    for rev in canon.history("outline"):          # a handful of revisions, oldest first
        if rev.created_at <= beats.created_at:
            then = rev
    if then is None:
        return ""

    def entry(rec: Record) -> tuple[Any, Any]:
        ep = next((e for e in rec.data.get("episodes") or [] if e.get("number") == episode), {})
        return ep.get("title"), ep.get("logline")

    if entry(then) != entry(outline):
        return (f"the outline's logline for episode {episode} changed after its beats were accepted; "
                f"revise beats-ep{episode}")
    return ""


def _changed_since(canon: Canon, scenes: list[Record], language: str, when: float) -> list[str]:
    """Ids of the episode's records whose content changed after ``when`` (a render's time). Only a
    record revised after it is looked at more closely (its history), so the usual case costs one
    lookup per record; a revision that only adds bookkeeping (an ear check) changes nothing."""
    records: list[Record] = []
    for scene in scenes:
        records.append(scene)
        motion = canon.live(motion_id(scene.id))
        if motion is not None:
            records.append(motion)
        for shot in shots_of(canon, scene.id):
            records.append(shot)
            panel = canon.live(image_record_id("panel", shot.id))
            if panel is not None:
                records.append(panel)
        for line in scene.data.get("lines", []):
            take = canon.live(take_id(str(line.get("id")), language))
            if take is not None:
                records.append(take)
    return [r.id for r in records if _when(r) > when and _content_changed_after(canon, r, when)]


def _content_changed_after(canon: Canon, record: Record, when: float) -> bool:
    def content(r: Record) -> dict[str, Any]:
        return {k: v for k, v in r.data.items() if k not in BOOKKEEPING}

    try:
        history = canon.history(record.id)
    except RecordNotFoundError:
        return True
    before = [r for r in history if _when(r) <= when]
    return not before or before[-1].deleted or content(before[-1]) != content(record)


# ----------------------------------------------------------------------------- season export


def export_season(canon: Canon, project: Project | Path, out_dir: Path | None = None, *,
                  language: str = PRIMARY_LANGUAGE) -> SeasonExport:
    """Copy every rendered episode's MP4, SRT, VTT and OTIO into ``out_dir`` (default
    ``renders/season/``, or ``renders/season/LANG/``) as ``epNN.*``, and write ``season.otio`` (one
    video track: each episode one clip, in order) and ``season_contact_sheet.png`` (a row of panel
    thumbnails per episode). Episodes without a render are named in ``missing``; InputError when
    no episode has been rendered at all."""
    project = as_project(project)
    if out_dir is None:
        out_dir = project.resolve(Path("renders", "season", "" if language == PRIMARY_LANGUAGE else language))
    folder = Path(out_dir).expanduser().resolve()
    episodes = series_episodes(canon)
    rendered: list[tuple[int, dict[str, Path]]] = []
    missing: list[str] = []
    for n in episodes:
        files = last_render(project, n, language)
        if files is None:
            missing.append(f"episode {n} has no {language} render yet; render it in the Episode tab "
                           f"or with `storyreel make --project {project.root} --episode {n}`")
        else:
            rendered.append((n, files))
    if not rendered:
        listed = ", ".join(str(n) for n in episodes) or "none in the outline yet"
        raise InputError(f"no episode of {project.name} has been rendered in {language!r} yet (episodes: {listed}); "
                         "render one first (the Episode tab, or `storyreel make`)")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for n, files in rendered:
        for key in EXPORTED:
            if key in files:
                written.append(_copy(files[key], folder / f"ep{n:02d}{files[key].suffix}"))
            else:
                missing.append(f"episode {n}: its render has no {key.upper()} file")
    timeline = _write_season_timeline(canon, project, folder, rendered)
    sheet = _write_season_sheet(canon, project, folder / SEASON_SHEET, rendered)
    return SeasonExport(folder=folder, episodes=tuple(n for n, _ in rendered),
                        files=(*written, timeline, sheet), timeline=timeline, contact_sheet=sheet,
                        missing=tuple(missing))


def _copy(src: Path, dest: Path) -> Path:
    """Copy, then rename into place: a reader never sees half a file."""
    tmp = dest.with_name(f".{dest.name}.part")
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)
    return dest


def _write_season_timeline(canon: Canon, project: Project, folder: Path,
                           rendered: list[tuple[int, dict[str, Path]]]) -> Path:
    """One timeline, one video track: each episode a clip of its MP4 (as copied here), as long as
    its own timeline, with the episode's shot ids in its metadata."""
    import opentimelineio as otio

    series = canon.live("series")
    titles = outline_episodes(canon)
    season = otio.schema.Timeline(name=f"{series.data.get('title') if series else project.name} — season")
    track = otio.schema.Track(name="Episodes", kind=otio.schema.TrackKind.Video)
    fps = 24.0
    for n, files in rendered:
        shots: list[str] = []
        duration = None
        if "otio" in files:
            episode_tl = otio.adapters.read_from_file(str(files["otio"]))
            duration = episode_tl.duration()
            fps = duration.rate
            video = episode_tl.video_tracks()
            shots = [c.name for c in video[0].find_clips()] if video else []
        if duration is None:
            duration = otio.opentime.RationalTime(_probe_seconds(files["mp4"]) * fps, fps)
        span = otio.opentime.TimeRange(otio.opentime.RationalTime(0, duration.rate), duration)
        track.append(otio.schema.Clip(
            name=f"Episode {n}: {titles.get(n, {}).get('title') or f'Episode {n}'}",
            media_reference=otio.schema.ExternalReference(target_url=(folder / f"ep{n:02d}.mp4").as_uri(),
                                                          available_range=span),
            source_range=span,
            metadata={"storyreel": {"episode": n, "file": f"ep{n:02d}.mp4", "shots": shots}}))
    season.tracks.append(track)
    season.metadata["storyreel"] = {"episodes": [n for n, _ in rendered]}
    out = folder / SEASON_TIMELINE
    tmp = out.with_name(f".{out.name}.part")
    tmp.write_text(otio.adapters.write_to_string(season, "otio_json"), encoding="utf-8")
    os.replace(tmp, out)
    return out


def _probe_seconds(mp4: Path) -> float:
    from tools.audio import probe_recording

    return float(probe_recording(mp4).duration_s or 0.0)


def _episode_thumbnails(canon: Canon, project: Project, episode: int) -> list[Path]:
    """The episode's accepted panels in cut order (files that exist)."""
    paths = []
    for scene in episode_scenes(canon, episode):
        for shot in shots_of(canon, scene.id):
            panel = canon.live(image_record_id("panel", shot.id))
            if panel is None:
                continue
            try:
                path = project.resolve(str(panel.data.get("path")))
            except (StoryreelError, ValueError, OSError):   # a path outside the project is left out
                continue
            if path.is_file():
                paths.append(path)
    return paths


def _write_season_sheet(canon: Canon, project: Project, out: Path, rendered: list[tuple[int, dict[str, Path]]],
                        *, per_row: int = 12, thumb: tuple[int, int] = (90, 160)) -> Path:
    """One image: a row per rendered episode, its label then its panels (or its render's contact
    sheet, scaled, when no panel file is left)."""
    from PIL import Image, ImageDraw

    from tools.backends._draw import load_font

    titles = outline_episodes(canon)
    pad, label_w = 10, 220
    rows = []
    for n, files in rendered:
        thumbs = _episode_thumbnails(canon, project, n)
        rows.append((n, thumbs, files.get("contact_sheet")))
    width = label_w + per_row * (thumb[0] + pad) + pad
    height = pad + len(rows) * (thumb[1] + pad)
    sheet = Image.new("RGB", (width, height), (250, 248, 244))
    draw = ImageDraw.Draw(sheet)
    font, small = load_font(22, cjk=True), load_font(14, cjk=True)
    for r, (n, thumbs, fallback) in enumerate(rows):
        y = pad + r * (thumb[1] + pad)
        draw.text((pad, y + 8), f"Episode {n}", fill=(30, 30, 40), font=font)
        draw.text((pad, y + 40), str(titles.get(n, {}).get("title") or "")[:26], fill=(80, 80, 90), font=small)
        x = label_w
        if thumbs:
            for path in thumbs[:per_row]:
                with Image.open(path) as im:
                    sheet.paste(im.convert("RGB").resize(thumb, Image.Resampling.BILINEAR), (x, y))
                x += thumb[0] + pad
            if len(thumbs) > per_row:
                draw.text((x - pad - 40, y + thumb[1] - 20), f"+{len(thumbs) - per_row}", fill=(200, 40, 40),
                          font=small)
        elif fallback is not None and Path(fallback).is_file():
            with Image.open(fallback) as im:
                im = im.convert("RGB")
                im.thumbnail((width - label_w - pad, thumb[1]))
                sheet.paste(im, (x, y))
    tmp = out.with_name(f".{out.name}.part")
    sheet.save(tmp, format="PNG", compress_level=3)
    os.replace(tmp, out)
    return out
