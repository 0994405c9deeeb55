"""The series board (agent.series.episode_status over a table of canon states) and the season export
(real renders through tools.render on tiny inputs, read back with ffprobe and OpenTimelineIO).

The project is made once by the real session (scripted model, animatic painter) up to episode 1's
panels; each case copies it and changes canon the way a director's decision would."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent.series import STATUSES, episode_status, export_season, latest_started_episode, series_board
from agent.voices import take_id, take_made_from
from memory.canon import Canon
from memory.errors import InputError
from memory.project import Project, open_project

EP1_SCENE = "scene-ep1-1"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A two-episode series: outline, episode 1's beats, scene, shot plan and every panel."""
    from agent.context import Targets
    from memory.project import create_project
    from tests.fakes import ScriptedChatModel
    from tools.backends.animatic import AnimaticPainter
    from ui.session import DirectorSession

    project = create_project(tmp_path_factory.mktemp("series"), "Fox Rain")
    with DirectorSession(project, ScriptedChatModel(), painter=AnimaticPainter(), candidates=1,
                         targets=Targets(characters=2, locations=1, props=0, episodes=2, scenes=1)) as s:
        s.start()
        view = s.send("A shrine maiden hears rain spirits.")
        while view.awaiting_decision and view.pending["kind"] not in ("casting", "take"):
            view = s.decide({"type": "accept"})
    return project.root


@pytest.fixture
def project(template, tmp_path) -> Project:
    root = tmp_path / "fox-rain"
    shutil.copytree(template, root, ignore=shutil.ignore_patterns(".storyreel.lock"))
    return open_project(root)


@pytest.fixture
def canon(project):
    with Canon(project.canon_path) as c:
        yield c


# --------------------------------------------------------------------- building canon states


def _tick() -> None:
    time.sleep(0.005)   # revisions carry millisecond timestamps: keep "before" and "after" apart


def start_ep2(canon: Canon, project: Project) -> None:
    beats = canon.get("beats-ep1").data
    canon.upsert("beats", {**beats, "episode": 2}, actor="human", record_id="beats-ep2", note="episode 2")


def mark_ep2_started(canon: Canon, project: Project) -> None:
    """The director's "Start episode 2" (agent.episodes, as the studio's button calls it)."""
    from agent.episodes import start_episode
    from memory.ledger import Ledger

    start_episode(canon, Ledger(project.ledger_path), 2)


def write_ep2_scene(canon: Canon, project: Project) -> None:
    start_ep2(canon, project)
    scene = canon.get(EP1_SCENE).data
    lines = [{**ln, "id": ln["id"].replace("ep1", "ep2")} for ln in scene["lines"]]
    canon.upsert("scene", {**scene, "episode": 2, "lines": lines}, actor="human", record_id="scene-ep2-1",
                 note="episode 2 scene")


def plan_ep2_shots(canon: Canon, project: Project) -> None:
    write_ep2_scene(canon, project)
    for shot in canon.children("shot", "scene_id", EP1_SCENE):
        data = {**shot.data, "scene_id": "scene-ep2-1",
                "line_ids": [i.replace("ep1", "ep2") for i in shot.data.get("line_ids", [])]}
        canon.upsert("shot", data, actor="human", record_id=shot.id.replace("ep1", "ep2"), note="ep2 shot")


def voice_ep1(canon: Canon, project: Project) -> None:
    """An accepted, current take for every line of episode 1 (a real WAV in the project)."""
    from tools.render.synthetic import speech_like, write_wav

    folder = project.root / "assets" / "audio" / "test"
    folder.mkdir(parents=True, exist_ok=True)
    for i, line in enumerate(canon.get(EP1_SCENE).data["lines"]):
        wav = write_wav(folder / f"{line['id']}.wav", speech_like(0.6, seed=i))
        canon.upsert("take", {"line_id": line["id"], "language": "en", "speaker": line["speaker"],
                              "path": wav.relative_to(project.root).as_posix(), "source": "generated",
                              "made_from": take_made_from(canon, line["id"], "en", line["speaker"])},
                     actor="human", record_id=take_id(line["id"], "en"), note="take")


def fake_render(project: Project, episode: int = 1) -> Path:
    """A finished render's file on disk, newer than every revision so far."""
    out = project.root / "renders" / f"ep{episode:02d}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "episode.mp4").write_bytes(b"mp4")
    _tick()
    now = time.time()
    os.utime(out / "episode.mp4", (now, now))
    _tick()
    return out / "episode.mp4"


def cut_ep1(canon: Canon, project: Project) -> None:
    voice_ep1(canon, project)
    fake_render(project)


def new_panel_after_cut(canon: Canon, project: Project) -> None:
    """Another (current) panel picked for shot 1 after the render: the cut no longer shows it."""
    cut_ep1(canon, project)
    panel = canon.get(f"panel-{EP1_SCENE}-s1")
    old = project.root / panel.data["path"]
    new = old.with_name("v2-upload.png")
    shutil.copy(old, new)
    canon.upsert("panel", {**panel.data, "path": new.relative_to(project.root).as_posix(), "source": "upload"},
                 actor="human", record_id=panel.id, note="uploaded")


def ear_check_after_cut(canon: Canon, project: Project) -> None:
    cut_ep1(canon, project)
    take = canon.get(take_id(f"{EP1_SCENE}-l1", "en"))
    canon.upsert("take", {**take.data, "check": {"wer": 0.0, "heard": "do you hear that"}}, actor="auto",
                 record_id=take.id, note="ear check recorded")


def restyle_aiko(canon: Canon, project: Project) -> None:
    aiko = canon.get("character-aiko")
    canon.upsert("character", {**aiko.data, "look_tags": ["white kimono", "long black hair"]}, actor="human",
                 record_id=aiko.id, note="new look")


def relogline_ep2(canon: Canon, project: Project) -> None:
    start_ep2(canon, project)
    _tick()
    outline = canon.get("outline")
    episodes = [{**e, "logline": "Ren vanishes."} if e["number"] == 2 else e for e in outline.data["episodes"]]
    canon.upsert("outline", {**outline.data, "episodes": episodes}, actor="human", record_id="outline",
                 note="new ep2 logline")


def relogline_ep3(canon: Canon, project: Project) -> None:
    start_ep2(canon, project)
    _tick()
    outline = canon.get("outline")
    episodes = [{**e, "logline": "Something else."} if e["number"] == 3 else e for e in outline.data["episodes"]]
    canon.upsert("outline", {**outline.data, "episodes": episodes}, actor="human", record_id="outline",
                 note="new ep3 logline")


def nothing(canon: Canon, project: Project) -> None:
    return None


@pytest.mark.parametrize("change, episode, status, reason", [
    (nothing, 2, "outline", "no beats yet"),
    (mark_ep2_started, 2, "writing", "started; its beats are not accepted yet"),
    (start_ep2, 2, "writing", "no scenes yet"),
    (write_ep2_scene, 2, "writing", "scene-ep2-1 has no shot plan yet"),
    (plan_ep2_shots, 2, "storyboard", "shot scene-ep2-1-s1 has no accepted panel"),
    (nothing, 1, "storyboard", "has no accepted en take"),        # panels done, nothing voiced
    (voice_ep1, 1, "voiced", "no accepted motion"),                # ready to cut, never rendered
    (cut_ep1, 1, "cut", None),
    (new_panel_after_cut, 1, "stale", "panel-scene-ep1-1-s1 changed after the render"),
    (ear_check_after_cut, 1, "cut", None),                         # bookkeeping is no change
    (restyle_aiko, 1, "stale", "panel is stale"),
    (relogline_ep2, 2, "stale", "logline for episode 2 changed"),
    (relogline_ep3, 2, "writing", "no scenes yet"),                # another episode's logline: not stale
])
def test_episode_status_over_canon_states(canon, project, change, episode, status, reason):
    change(canon, project)
    got = episode_status(canon, project, episode)
    assert got.status == status, got.reasons
    assert got.status in STATUSES
    if reason is None:
        assert got.reasons == ()
    else:
        assert any(reason in r for r in got.reasons), got.reasons
    assert (got.render is not None) == (status in ("cut",) or change in (new_panel_after_cut, ear_check_after_cut))


def test_board_lists_every_outline_episode_in_order(canon, project):
    plan_ep2_shots(canon, project)
    board = series_board(canon, project)
    numbers = [row.episode for row in board]
    assert numbers == sorted(numbers) and numbers[:2] == [1, 2]
    assert len(numbers) == len(canon.get("outline").data["episodes"])
    assert [row.status for row in board[:3]] == ["storyboard", "storyboard", "outline"]
    assert board[0].title == canon.get("outline").data["episodes"][0]["title"]
    assert latest_started_episode(canon) == 2


@pytest.mark.parametrize("bad", [0, -1, True, "2", 1.5])
def test_episode_status_refuses_a_bad_episode_number(canon, project, bad):
    with pytest.raises(InputError, match="not an episode number"):
        episode_status(canon, project, bad)


# --------------------------------------------------------------------- season export


def _tiny_render(project: Project, episode: int, shots: int) -> None:
    """A real render (tools.render, ffmpeg) of a tiny episode into renders/epNN/."""
    from tools.render import render_episode
    from tools.render.spec import CaptionCue, EpisodeSpec, ShotSpec, TakeCue
    from tools.render.synthetic import make_panel, speech_like, write_wav

    src = project.root / "state" / f"tiny-{episode}"
    src.mkdir(parents=True, exist_ok=True)
    specs = []
    for i in range(shots):
        panel = make_panel(src / f"p{i}.png", 10 * episode + i, 360, 640)
        wav = write_wav(src / f"t{i}.wav", speech_like(0.5, seed=i))
        specs.append(ShotSpec(f"ep{episode}-s{i}", panel, 1.0, "static", transition_in="cut",
                              captions=(CaptionCue(f"Line {i}", 0.2, 0.8, "aiko"),),
                              takes=(TakeCue(wav, 0.2),), seed=i))
    render_episode(EpisodeSpec(tuple(specs), fps=24, width=180, height=320, preset="ultrafast"),
                   project.root / "renders" / f"ep{episode:02d}", project.root / "state" / "render-cache")


def _probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.slow
def test_export_season_copies_every_render_and_writes_the_season_files(canon, project, tmp_path):
    import opentimelineio as otio
    from PIL import Image

    plan_ep2_shots(canon, project)
    _tiny_render(project, 1, 2)
    _tiny_render(project, 2, 3)
    result = export_season(canon, project, tmp_path / "season")

    assert result.episodes == (1, 2)
    for n in (1, 2):
        for suffix in (".mp4", ".srt", ".vtt", ".otio"):
            assert (tmp_path / "season" / f"ep{n:02d}{suffix}").is_file()
    probes = {n: _probe(tmp_path / "season" / f"ep{n:02d}.mp4") for n in (1, 2)}
    for n, probe in probes.items():
        assert {s["codec_name"] for s in probe["streams"]} >= {"h264", "aac"}
    assert "Line 1" in (tmp_path / "season" / "ep01.srt").read_text()

    season = otio.adapters.read_from_file(str(result.timeline))
    assert len(season.tracks) == 1
    clips = list(season.tracks[0].find_clips())
    assert [c.metadata["storyreel"]["episode"] for c in clips] == [1, 2]
    assert list(clips[1].metadata["storyreel"]["shots"]) == ["ep2-s0", "ep2-s1", "ep2-s2"]
    for clip, n in zip(clips, (1, 2)):
        seconds = float(probes[n]["format"]["duration"])
        assert abs(clip.source_range.duration.to_seconds() - seconds) < 0.3
        assert clip.media_reference.target_url.endswith(f"ep{n:02d}.mp4")
    assert abs(season.duration().to_seconds() - sum(float(p["format"]["duration"]) for p in probes.values())) < 0.6

    with Image.open(result.contact_sheet) as sheet:
        assert sheet.height >= 2 * 160       # a row per exported episode
    # episodes 3.. have no render: named, not fatal
    assert result.missing and all("no en render yet" in m for m in result.missing)
    assert any(m.startswith("episode 3 ") for m in result.missing)


def test_export_season_without_any_render_names_what_to_do(canon, project, tmp_path):
    with pytest.raises(InputError, match="render one first"):
        export_season(canon, project, tmp_path / "season")
    assert not (tmp_path / "season").exists()


def test_export_command_writes_into_the_project_by_default(canon, project, capsys):
    from tools.render.synthetic import make_panel
    from ui.cli import main

    out = project.root / "renders" / "ep01"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("episode.mp4", "episode.srt", "episode.vtt"):
        (out / name).write_bytes(b"x")
    make_panel(out / "contact_sheet.png", 1, 360, 640)
    (out / "timeline.otio").write_text(_one_clip_otio(), encoding="utf-8")
    assert main(["--projects-dir", str(project.root.parent), "export", project.root.name]) == 0
    printed = capsys.readouterr().out
    season = project.root / "renders" / "season"
    assert (season / "ep01.mp4").read_bytes() == b"x" and (season / "season.otio").is_file()
    assert "Exported 1 episode(s)" in printed and "left out: episode 2" in printed


def _one_clip_otio() -> str:
    import opentimelineio as otio

    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    tl = otio.schema.Timeline(name="ep1")
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    track.append(otio.schema.Clip(name="scene-ep1-1-s1", source_range=tr(rt(0, 24), rt(48, 24))))
    tl.tracks.append(track)
    return otio.adapters.write_to_string(tl, "otio_json")


def test_export_command_without_renders_exits_2(project, capsys):
    from ui.cli import main

    assert main(["--projects-dir", str(project.root.parent), "export", project.root.name]) == 2
    assert "render one first" in capsys.readouterr().err


def test_session_keeps_the_picked_episode_for_its_tabs(project):
    from tests.fakes import ScriptedChatModel
    from tools.backends.animatic import AnimaticPainter
    from ui.session import DirectorSession

    with DirectorSession(project, ScriptedChatModel(), painter=AnimaticPainter()) as s:
        assert s.current_episode() == 1
        plan_ep2_shots(s.canon, project)
        assert s.current_episode() == 2                      # default: the latest started
        assert [e["scene"].id for e in s.storyboard(2)] == ["scene-ep2-1"]
        assert {t["line_id"] for t in s.voices()["takes"]} == {"scene-ep2-1-l1", "scene-ep2-1-l2"}
        assert s.pick_episode(1) == 1 and s.current_episode() == 1
        assert {t["line_id"] for t in s.voices()["takes"]} == {"scene-ep1-1-l1", "scene-ep1-1-l2"}
        assert [e["scene"].id for e in s.storyboard()] == ["scene-ep1-1", "scene-ep2-1"]   # None: all
        with pytest.raises(InputError, match="episode 9 is not in the outline"):
            s.pick_episode(9)
        with pytest.raises(InputError, match="not an episode number"):
            s.pick_episode(0)
        assert s.current_episode() == 1                      # a refused pick changes nothing
        assert [row.status for row in s.series_board()][:2] == ["storyboard", "storyboard"]
