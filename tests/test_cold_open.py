"""A "previously on" cold open (agent.kinds.recap): proposed in the chat, on the studio's button or by
the planner with `[series] cold_open = true`; checked against episode 1's accepted shots; accepted,
it is cut before episode 2 (pieces of episode 1's render units), and the SRT, VTT and OTIO follow.

The two-episode project is written straight into canon (accepted records, synthetic panels and
takes; no model, no painter); the chat model is scripted; renders are real (ffmpeg, tiny sizes,
except the one 1080x1920 check)."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.context import Targets
from agent.kinds.recap import ColdOpenProposal, check_picks, draft_cold_open, source_shots
from agent.storyboard import image_record_id, made_from, write_shot_plan
from agent.voices import take_id
from memory.canon import Canon
from memory.errors import InputError
from memory.project import Project, create_project, open_project
from tests.fakes import BEATS, CHARACTERS, LOCATIONS, OUTLINE, SERIES, ScriptedChatModel
from ui.session import DirectorSession

SCENES = {
    1: {"title": "Rain Voices", "location": "Hilltop Shrine", "characters": ["Aiko", "Ren"], "action": "Rain.",
        "lines": [{"speaker": "Aiko", "line": "Do you hear that?", "emotion": "scared"},
                  {"speaker": "Ren", "line": "I don't know your name.", "emotion": "sad"}]},
    2: {"title": "After", "location": "Hilltop Shrine", "characters": ["Aiko", "Ren"], "action": "Morning.",
        "lines": [{"speaker": "Aiko", "line": "Remember me.", "emotion": "sad"},
                  {"speaker": "Ren", "line": "Who are you?", "emotion": "neutral"}]},
}
TAKE_S = 0.8
TARGETS = Targets(characters=2, locations=1, props=0, episodes=2, scenes=1, shots=3)


def _shot(framing: str, chars: list[str], lines: list[int], move: str = "static") -> dict:
    return {"framing": framing, "angle": "eye level", "camera_move": move,
            "characters": [{"name": c, "expression": "neutral", "pose": ""} for c in chars],
            "location": "Hilltop Shrine", "lighting": "rain light", "mood": "tense", "lines": lines,
            "duration_s": 2.0, "transition": "cut"}


PLANS = {1: [_shot("establishing", [], [], "push-in"), _shot("close-up", ["Aiko"], [1]),
             _shot("medium", ["Ren"], [2], "pan")],
         2: [_shot("medium", ["Aiko"], [1]), _shot("close-up", ["Ren"], [2])]}
# a shot with a line lasts LEAD_IN 0.35 + take 0.8 + TAIL 0.45 + pad 0.3 = 1.9 s; one without, 2.0 + 0.3
SHOT_S = {"scene-ep1-1-s1": 2.3, "scene-ep1-1-s2": 1.9, "scene-ep1-1-s3": 1.9}


def build_two_episodes(root: Path) -> None:
    """Episodes 1 and 2, each one scene with its shots, panels, takes and motion, all accepted."""
    from tools.render.synthetic import make_panel, speech_like, write_wav

    with Canon(root / "canon.sqlite") as canon:
        def put(kind: str, data: dict, rid: str) -> None:
            canon.upsert(kind, data, actor="human", record_id=rid, note="fixture")

        put("series", {k: SERIES[k] for k in ("title", "logline")}, "series")
        put("style", {k: SERIES[k] for k in ("art_style", "palette", "tone", "target_episode_seconds")}, "style")
        for c in CHARACTERS[:2]:
            put("character", c, f"character-{c['name'].lower()}")
        put("location", LOCATIONS[0], "location-hilltop-shrine")
        put("outline", {"episodes": OUTLINE["episodes"][:2]}, "outline")
        put("summary", {"episode": 1, "summary": "Ren forgets Aiko.", "facts": []}, "summary-ep1")
        for ep in (1, 2):
            put("episode", {**OUTLINE["episodes"][ep - 1], "started": True}, f"episode-{ep}")
            put("beats", {**BEATS, "episode": ep}, f"beats-ep{ep}")
            sid = f"scene-ep{ep}-1"
            put("scene", {**SCENES[ep], "episode": ep, "number": 1,
                          "lines": [{**ln, "id": f"{sid}-l{i}"} for i, ln in enumerate(SCENES[ep]["lines"], 1)]}, sid)
            write_shot_plan(canon, {"scene_id": sid, "shots": PLANS[ep]}, actor="human", note="fixture")
            assets = root / "assets" / "fixture"
            assets.mkdir(parents=True, exist_ok=True)
            for k in range(1, len(PLANS[ep]) + 1):
                shot = f"{sid}-s{k}"
                panel = make_panel(assets / f"{shot}.png", 10 * ep + k, 270, 480)
                put("panel", {"kind": "panel", "subject": shot, "path": f"assets/fixture/{panel.name}",
                              "made_from": made_from(canon, "panel", shot)}, image_record_id("panel", shot))
            for i in (1, 2):
                wav = write_wav(assets / f"{sid}-l{i}.wav", speech_like(TAKE_S, seed=10 * ep + i))
                put("take", {"line_id": f"{sid}-l{i}", "language": "en", "path": f"assets/fixture/{wav.name}",
                             "duration_s": TAKE_S}, take_id(f"{sid}-l{i}", "en"))
            put("motion", {"scene_id": sid, "shots": [
                {"shot_id": f"{sid}-s{k}", "camera_move": p["camera_move"], "ease": "in_out", "grade": "none",
                 "vignette": False, "flicker": False, "flash": False, "transition": "cut", "pad_s": 0.3}
                for k, p in enumerate(PLANS[ep], 1)]}, f"motion-{sid}")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    project = create_project(tmp_path_factory.mktemp("cold-open"), "Fox Rain")
    build_two_episodes(project.root)
    return project.root


@pytest.fixture
def project(template, tmp_path) -> Project:
    root = tmp_path / "fox-rain"
    shutil.copytree(template, root, ignore=shutil.ignore_patterns(".storyreel.lock"))
    return open_project(root)


def demo_model(script: dict | None = None, capable: bool = False) -> ScriptedChatModel:
    model = ScriptedChatModel(script)
    model.is_demo = not capable   # an embedded demo model: the offline picks, no model call
    return model


@pytest.fixture
def session(project):
    with DirectorSession(project, demo_model(), targets=TARGETS) as s:
        s.start()
        s.send("A shrine maiden hears rain spirits.")
        yield s


def _accept(s: DirectorSession):
    return s.decide({"type": "accept", "proposal_id": s.view().pending["proposal_id"]})


# ----------------------------------------------------------------------------- drafting


def test_the_offline_draft_ends_on_the_cliffhanger_within_three_to_six_seconds(project):
    with Canon(project.canon_path) as canon:
        table = source_shots(canon, project, 1)
        assert {k: round(v.duration, 2) for k, v in table.items()} == SHOT_S
        data = draft_cold_open(canon, project, 2)
    assert data["episode"] == 2 and data["title"] == "Previously on Fox Rain…"
    picks = data["picks"]
    assert [p["shot"] for p in picks] == ["scene-ep1-1-s2", "scene-ep1-1-s3"]   # close-up line, then the cliff
    assert picks[-1]["line"] == "I don't know your name."
    assert 3.0 <= sum(p["out_s"] - p["in_s"] for p in picks) <= 6.0
    for p in picks:
        assert 0 <= p["in_s"] < p["out_s"] <= SHOT_S[p["shot"]] and p["panel"].startswith("assets/fixture/")


def test_episode_one_cannot_have_a_cold_open(session):
    with pytest.raises(InputError, match="episode 1 has no episode before it"):
        session.add_cold_open(1)
    with pytest.raises(ValueError, match="episode 1 has no episode before it"):
        ColdOpenProposal.model_validate({"episode": 1, "title": "x", "picks": [
            {"shot": "a", "in_s": 0, "out_s": 2}, {"shot": "b", "in_s": 0, "out_s": 2}]})
    view = session.send("add a previously on to episode 1")
    assert view.pending["kind"] == "input"
    assert any("episode 1 has no episode before it" in m["content"] for m in view.messages[-2:])


# ----------------------------------------------------------------------------- proposing, editing, accepting


def test_asked_in_the_chat_it_is_a_card_with_picks_and_times_then_canon(session):
    from ui.cards import card_markdown

    view = session.send("add a previously on to episode 2")
    card = view.pending
    assert card["kind"] == "cold_open" and card["data"]["episode"] == 2, view.messages[-3:]
    text = card_markdown(card)
    assert "Previously on Fox Rain" in text and "`scene-ep1-1-s3`" in text and " → " in text
    assert session.canon.live("cold-open-ep2") is None            # nothing in canon before it is accepted
    view = _accept(session)
    rec = session.canon.get("cold-open-ep2")
    assert rec.data["picks"] == card["data"]["picks"] and rec.actor == "human"
    assert any(e["action"] == "accept" and e["kind"] == "cold_open" for e in session.ledger.entries())


BAD_EDITS = [   # (what the director changes, what the refusal must name)
    (lambda d: d["picks"][0].update(shot="scene-ep2-1-s1"), "'scene-ep2-1-s1' is not an accepted shot of episode 1"),
    (lambda d: d["picks"][0].update(shot="shot-nope"), "'shot-nope' is not an accepted shot of episode 1"),
    (lambda d: d["picks"][1].update(out_s=2.5), "out 2.5 s is past the end of the shot"),
    (lambda d: d["picks"].append({"shot": "scene-ep1-1-s1", "in_s": 0, "out_s": 2.3}), "last 6.10 s in all"),
    (lambda d: d["picks"][1].update(out_s=d["picks"][1]["in_s"] + 0.2), "lengthen the picks"),
    (lambda d: d["picks"].pop(), "picks: List should have at least 2 items"),
    (lambda d: d["picks"][0].update(out_s=d["picks"][0]["in_s"]), "is not after in"),
    (lambda d: d.update(episode=1), "episode 1 has no episode before it"),
]


def test_a_bad_edit_is_refused_naming_the_value(session):
    card = session.add_cold_open(2).pending
    for k, (change, named) in enumerate(BAD_EDITS):
        data = json.loads(json.dumps(card["data"]))
        change(data)
        view = session.decide({"type": "edit", "data": data, "proposal_id": card["proposal_id"]})
        assert view.pending["proposal_id"] == card["proposal_id"], k           # the card stays
        assert named in (view.pending.get("error") or ""), (k, view.pending.get("error"))
        assert session.canon.live("cold-open-ep2") is None


def test_the_studio_card_shows_the_picks_as_thumbnails(session):
    from ui.app import _cold_open_thumbs

    card = session.add_cold_open(2).pending
    html = _cold_open_thumbs(session, card)
    assert html.count("<img") == 2 and "scene-ep1-1-s3.png" in html and "2 · 0.00–1.90 s" in html
    assert _cold_open_thumbs(session, {"kind": "motion", "data": {"shots": []}}) == ""
    # the button's wiring is built by every build_app (tests/test_branches.py builds it)
    from ui.edit_form import form_layout  # Edit: one row per pick, shot and times editable

    table = next(w for w in form_layout(ColdOpenProposal) if getattr(w, "name", "") == "picks")
    assert {c.name: c.read_only for c in table.columns if c.name in ("shot", "in_s", "out_s")} == {
        "shot": False, "in_s": False, "out_s": False}


def test_an_edit_that_fits_is_accepted_with_its_panels_and_words_filled_in(session):
    card = session.add_cold_open(2).pending
    data = {"episode": 2, "title": "Last time on Fox Rain", "picks": [
        {"shot": "scene-ep1-1-s1", "in_s": 0.5, "out_s": 2.0},
        {"shot": "scene-ep1-1-s3", "in_s": 0.2, "out_s": 1.9}]}
    session.decide({"type": "edit", "data": data, "proposal_id": card["proposal_id"]})
    rec = session.canon.get("cold-open-ep2")
    assert rec.data["title"] == "Last time on Fox Rain"
    assert rec.data["picks"][1]["line"] == "I don't know your name." and rec.data["picks"][0]["line"] == ""
    assert rec.data["picks"][0]["panel"] == "assets/fixture/scene-ep1-1-s1.png"


def test_a_capable_models_picks_are_used_and_junk_falls_back(project):
    good = {"episode": 2, "title": "Previously on Fox Rain…", "picks": [
        {"shot": "scene-ep1-1-s1", "in_s": 0.0, "out_s": 2.0}, {"shot": "scene-ep1-1-s3", "in_s": 0, "out_s": 1.9}]}
    junk = {"episode": 2, "title": "x", "picks": [{"shot": "scene-ep9-1-s1", "in_s": 0, "out_s": 2},
                                                  {"shot": "scene-ep1-1-s3", "in_s": 0, "out_s": 1.9}]}
    model = demo_model({"ColdOpenProposal": [good, junk, junk, junk, junk]}, capable=True)
    with DirectorSession(project, model, targets=TARGETS) as s:
        s.start()
        s.send("A shrine maiden hears rain spirits.")
        card = s.add_cold_open(2).pending
        assert [p["shot"] for p in card["data"]["picks"]] == ["scene-ep1-1-s1", "scene-ep1-1-s3"]
        assert not card["warnings"]
        card = s.decide({"type": "redo", "proposal_id": card["proposal_id"]}).pending
        assert [p["shot"] for p in card["data"]["picks"]] == ["scene-ep1-1-s2", "scene-ep1-1-s3"]
        assert "could not be used" in card["warnings"][0] and "scene-ep9-1-s1" in card["warnings"][0]


# ----------------------------------------------------------------------------- the planner and make


def test_the_planner_proposes_it_only_when_project_toml_asks(project):
    from agent.kinds import next_task

    with DirectorSession(project, demo_model(), targets=TARGETS) as s:
        assert next_task(s.canon, s.context) is None                      # default: never unasked
    text = (project.root / "project.toml").read_text()
    (project.root / "project.toml").write_text(text + "\n[series]\ncold_open = true\n")
    with DirectorSession(open_project(project.root), demo_model(), targets=TARGETS) as s:
        assert next_task(s.canon, s.context) == {"kind": "cold_open", "target_id": None, "episode": 2,
                                                 "subject": "episode-2"}
        s.start()
        view = s.send("A shrine maiden hears rain spirits.")
        assert view.pending["kind"] == "cold_open"
        view = s.decide({"type": "reject", "note": "not this time", "proposal_id": view.pending["proposal_id"]})
        assert view.pending["kind"] == "input" and s.canon.live("cold-open-ep2") is None
        assert "No 'previously on' for episode 2 (“not this time”)" in view.messages[-1]["content"]
        assert next_task(s.canon, s.context) is None                      # rejected: not proposed unasked again
        view = s.send("recap for ep 2")                                   # asked for: proposed
        assert view.pending["kind"] == "cold_open"
        view = _accept(s)
        assert s.canon.live("cold-open-ep2") is not None and next_task(s.canon, s.context) is None
        s.undo("cold-open-ep2")                                           # undone: not proposed unasked again
        assert s.canon.live("cold-open-ep2") is None and next_task(s.canon, s.context) is None


def test_make_cold_open_accepts_it_as_auto(project):
    from ui.headless import _add_cold_open

    said: list[str] = []
    with DirectorSession(project, demo_model(), actor="auto", targets=TARGETS) as s:
        view = s.start()
        view = s.send("A shrine maiden hears rain spirits.")
        _add_cold_open(s, view, 2, said.append)
        assert s.canon.get("cold-open-ep2").actor == "auto"
        accepts = [e for e in s.ledger.entries() if e["kind"] == "cold_open" and e["action"] == "accept"]
        assert [e["actor"] for e in accepts] == ["auto"]
        _add_cold_open(s, s.view(), 1, said.append)                        # episode 1: said, nothing made
    assert said and "episode 1 has no episode before it" in said[-1]


def test_the_cli_passes_cold_open_to_make(tmp_path, monkeypatch):
    from ui.cli import main

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    with pytest.raises(SystemExit):
        main(["make", "--help"])
    assert "--cold-open" in out.getvalue()


# ----------------------------------------------------------------------------- the cut


def _probe_duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["format"]["duration"])


def test_the_cut_opens_on_it_and_captions_and_timeline_shift(session, tmp_path):
    import opentimelineio as otio

    from agent.cut import episode_spec
    from tools.render import episode_duration, render_episode
    from tools.render.exports import episode_captions

    session.add_cold_open(2)
    _accept(session)
    picks = session.canon.get("cold-open-ep2").data["picks"]
    total = sum(p["out_s"] - p["in_s"] for p in picks)
    kw = {"episode": 2, "width": 180, "height": 320, "preset": "ultrafast"}
    bare = episode_spec(session.canon, session.project, cold_open=False, **kw)
    spec = episode_spec(session.canon, session.project, **kw)
    assert [s.shot_id for s in spec.shots[:2]] == [f"cold-open-{k}-{p['shot']}" for k, p in enumerate(picks, 1)]
    assert all(s.cold_open and s.is_piece for s in spec.shots[:2]) and not spec.shots[2].cold_open
    extra = episode_duration(spec) - episode_duration(bare)
    assert 3.0 <= extra <= 6.0 and extra == pytest.approx(total, abs=2 / 24)

    result = render_episode(spec, tmp_path / "ep02", tmp_path / "cache")
    assert _probe_duration(result.mp4) == pytest.approx(episode_duration(spec), abs=0.1)
    cues = episode_captions(spec)
    assert cues[0].text == "Previously on Fox Rain…" and cues[0].start == 0.0
    assert any(c.text == "I don't know your name." and c.start < extra for c in cues)   # the cliffhanger line
    shifted = [(round(c.start - extra, 2), c.text) for c in cues if c.start >= extra - 1e-6]
    assert shifted == [(round(c.start, 2), c.text) for c in episode_captions(bare)]
    srt = result.srt.read_text()
    assert srt.count("-->") == len(cues) and "Previously on Fox Rain" in srt
    clips = otio.adapters.read_from_file(str(result.otio)).tracks[0].find_clips()
    flagged = [c.name for c in clips if c.metadata["storyreel"].get("cold_open")]
    assert flagged == [s.shot_id for s in spec.shots[:2]]
    assert clips[0].metadata["storyreel"]["source_in"] == picks[0]["in_s"]


@pytest.mark.slow
def test_the_full_size_render_holds_the_cold_open_and_undoing_it_removes_it(session):
    """One real 1080x1920 render_cut with the cold open, then undone: the next render is without it."""
    from agent.cut import render_cut

    session.add_cold_open(2)
    _accept(session)
    with_open = render_cut(session.canon, session.project.root, episode=2)
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
                          "-of", "json", str(with_open.mp4)], capture_output=True, text=True, check=True)
    streams = json.loads(out.stdout)["streams"]
    assert {"codec_name": "h264", "width": 1080, "height": 1920} in streams
    assert any(st["codec_name"] == "aac" for st in streams)
    long_s = _probe_duration(with_open.mp4)
    assert with_open.srt.read_text().splitlines()[2] == "Previously on Fox Rain…"
    session.undo("cold-open-ep2")
    without = render_cut(session.canon, session.project.root, episode=2)
    short_s = _probe_duration(without.mp4)
    assert 3.0 - 0.1 <= long_s - short_s <= 6.0 + 0.1
    assert "Previously on" not in without.srt.read_text()
    assert set(without.reused_segments) >= {f"shot:{sid}" for sid in ("scene-ep2-1-s1", "scene-ep2-1-s2")}


def test_a_pick_canon_no_longer_has_stops_the_cut_naming_it(session):
    from agent.cut import episode_spec

    session.add_cold_open(2)
    _accept(session)
    session.canon.delete("scene-ep1-1-s3", actor="human", note="test: the shot is removed")
    with pytest.raises(InputError, match="previously on of episode 2 .*scene-ep1-1-s3"):
        episode_spec(session.canon, session.project, episode=2)
    with pytest.raises(InputError, match="'scene-ep1-1-s3' is not an accepted shot of episode 1"):
        check_picks(session.canon, session.project, session.canon.get("cold-open-ep2").data)


def test_every_previously_on_row_of_the_router_table_routes_exactly(tmp_path):
    """tests/router_table.py's cold_open rows (a typo among them) each reach the tool and episode:
    the table's accuracy test allows misses, this one does not."""
    from types import SimpleNamespace

    from agent.router import OfflineRouter
    from tests.router_table import ROWS, open_fixture, outcome

    rows = [row for row in ROWS if "cold_open" in row.tools]
    assert len(rows) >= 5
    canon = open_fixture(tmp_path / "p")
    router = OfflineRouter()
    router.warm()
    try:
        for row in rows:
            assert outcome(router.route(row.text, SimpleNamespace(canon=canon), {"pending": row.card})) == \
                (row.tools, row.targets), row.text
    finally:
        canon.close()
