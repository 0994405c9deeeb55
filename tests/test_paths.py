"""Paths from decisions, edits, canon and models never leave the project (issue 9, point 3).

Real canon, checkpointer, animatic painter and ledger; the LLM is scripted. Each test tries one way
out (an absolute path, '..', a symlink, a revert to an old revision, an export name) and checks
that it is refused with a message naming the path, and that nothing outside was read or copied.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.context import DirectorContext, Targets, as_project
from agent.cut import episode_spec, render_cut
from agent.review import check_decision, check_project_path
from memory.errors import InputError, PathOutsideProjectError
from memory.project import create_project
from tests.fakes import ScriptedChatModel
from tools.backends.animatic import AnimaticPainter
from ui.session import DirectorSession

TARGETS = Targets(characters=1, locations=1, props=0, episodes=1, scenes=1)


@pytest.fixture
def at_reference(tmp_path):
    """A session whose card is Aiko's reference sheet (image candidates, uploads allowed)."""
    project = create_project(tmp_path / "projects", "Fox Rain")
    s = DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=AnimaticPainter(), candidates=1)
    s.start()
    view = s.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] != "reference":
        view = s.decide({"type": "accept"})
    yield s
    s.close()


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.new("RGB", (64, 64), (255, 0, 0)).save(secret)
    return secret


def _project_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("path, problem", [
    ("/etc/passwd", "is absolute"),
    ("../../../../etc/passwd", "contains '..'"),
    ("assets/../../outside.png", "contains '..'"),
    ("assets/uploads/x\x00.png", "contains NUL"),
    ("~/secret.png", "is absolute"),
    ("", "not a project-relative path"),
])
def test_check_decision_refuses_upload_paths_out_of_the_project(path, problem):
    with pytest.raises(InputError) as err:
        check_decision({"type": "upload", "path": path})
    assert problem in str(err.value) and repr(path) in str(err.value)


@pytest.mark.parametrize("path", ["assets/uploads/upload-1.png", "assets/drafts/panel/s1/abc/a.png"])
def test_check_project_path_accepts_plain_relative_paths(path):
    assert check_project_path(path) == path


def test_upload_decision_of_etc_passwd_is_refused_and_nothing_is_copied(at_reference):
    s = at_reference
    before = s.view().pending
    files = _project_files(s.project.root)
    with pytest.raises(InputError, match=r"'/etc/passwd' is absolute"):
        s.decide({"type": "upload", "path": "/etc/passwd"})
    assert s.view().pending["proposal_id"] == before["proposal_id"]   # the card is intact
    assert s.canon.live("ref-character-aiko") is None
    assert _project_files(s.project.root) == files


def test_upload_through_a_symlink_inside_assets_that_points_out_is_refused(at_reference, tmp_path):
    s = at_reference
    secret = _secret(tmp_path)
    link = s.project.root / "assets" / "uploads" / "evil.png"
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(secret, link)
    view = s.decide({"type": "upload", "path": "assets/uploads/evil.png"})  # lexically fine: resolved at use
    assert view.pending["kind"] == "reference" and "outside the project" in view.pending["failure"]
    assert "evil.png" in view.pending["failure"]
    assert s.canon.live("ref-character-aiko") is None
    copied = [p for p in (s.project.root / "assets" / "panels").rglob("*.png")] \
        if (s.project.root / "assets" / "panels").exists() else []
    assert copied == []
    # the card can be left: a fresh proposal, then a normal accept works
    view = s.decide({"type": "redo"})
    assert view.pending["data"]["candidates"] and not view.pending.get("failure")
    s.decide({"type": "accept"})
    assert s.canon.live("ref-character-aiko") is not None


def test_an_open_decision_whose_subject_climbs_out_is_a_failure_card(at_reference):
    s = at_reference
    view = s.decide({"type": "open", "task": {"kind": "reference", "subject": "../../../../../tmp/x"}})
    assert view.pending.get("failure") and "outside the project" in view.pending["failure"]
    assert not (Path("/tmp/x")).exists() or not any(Path("/tmp/x").rglob("*.png"))


@pytest.mark.parametrize("task, message", [
    ({"kind": "villain", "subject": "x"}, "cannot open 'villain'"),
    ({"kind": "panel"}, "needs its record id as 'subject'"),
    ({"kind": "shots", "subject": "scene-ep1-1"}, "needs its record id as 'scene_id'"),
    ({"kind": "panel", "subject": 7}, "not 7"),
])
def test_open_decisions_need_a_known_kind_and_a_subject(task, message):
    with pytest.raises(InputError, match=message):
        check_decision({"type": "open", "task": task})


def _motion_project(tmp_path: Path, clip: list[str]) -> tuple[DirectorSession, Path]:
    """Canon with one scene, one shot, an accepted panel and a motion record using `clip`."""
    project = create_project(tmp_path / "projects", "Fox Rain")
    s = DirectorSession(project, ScriptedChatModel(), targets=TARGETS)
    panel = project.root / "assets" / "panels" / "scene-ep1-1-s1" / "v1-abc.png"
    panel.parent.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (108, 192), (20, 20, 60)).save(panel)
    s.canon.upsert("scene", {"episode": 1, "number": 1, "title": "S", "location": "Shrine", "characters": [],
                             "action": "Rain.", "lines": []}, actor="human", record_id="scene-ep1-1")
    s.canon.upsert("shot", {"scene_id": "scene-ep1-1", "index": 1, "framing": "wide", "camera_move": "static",
                            "characters": [], "line_ids": [], "duration_s": 1.0}, actor="human",
                   record_id="scene-ep1-1-s1")
    s.canon.upsert("panel", {"kind": "panel", "subject": "scene-ep1-1-s1",
                             "path": panel.relative_to(project.root).as_posix(), "layers": {}, "variants": {}},
                   actor="human", record_id="panel-scene-ep1-1-s1")
    s.canon.upsert("motion", {"scene_id": "scene-ep1-1", "shots": [
        {"shot_id": "scene-ep1-1-s1", "camera_move": "static", "clip": clip, "clip_fps": 8.0}]},
        actor="human", record_id="motion-scene-ep1-1")
    return s, project.root


def test_a_motion_clip_outside_the_project_is_refused_when_the_cut_is_planned(tmp_path):
    secret = _secret(tmp_path)
    s, root = _motion_project(tmp_path, [str(secret)])
    try:
        with pytest.raises(PathOutsideProjectError, match="secret.png"):
            episode_spec(s.canon, root)
        with pytest.raises(PathOutsideProjectError, match="outside the project"):
            s.render()     # refused before any job starts; the studio shows the message
        assert not (root / "renders" / "ep01").exists()
    finally:
        s.close()


def test_a_motion_edit_with_an_outside_clip_is_refused_by_check_decision():
    data = {"scene_id": "scene-ep1-1", "shots": [{"shot_id": "scene-ep1-1-s1", "clip": ["/outside/secret.png"]}]}
    with pytest.raises(InputError, match=r"the edit\.shots\[0\]\.clip\[0\] '/outside/secret.png' is absolute"):
        check_decision({"type": "edit", "data": data})
    data["shots"][0]["clip"] = ["assets/../../secret.png"]
    with pytest.raises(InputError, match="contains '..'"):
        check_decision({"type": "edit", "data": data})
    data["shots"][0]["clip"] = ["assets/drafts/motion/s1/p/frame-000.png"]
    assert check_decision({"type": "edit", "data": data})["type"] == "edit"


def test_a_revert_cannot_bring_an_outside_path_back_into_the_render(tmp_path):
    secret = _secret(tmp_path)
    s, root = _motion_project(tmp_path, [str(secret)])   # rev 1: an old, crafted revision
    try:
        good = s.canon.get("motion-scene-ep1-1").data
        good["shots"][0]["clip"] = []
        s.canon.upsert("motion", good, actor="human", record_id="motion-scene-ep1-1")  # rev 2: clean
        assert episode_spec(s.canon, root).shots[0].clip == ()
        s.undo("motion-scene-ep1-1", 1)
        with pytest.raises(PathOutsideProjectError, match="secret.png"):
            episode_spec(s.canon, root)
    finally:
        s.close()


def test_a_panel_whose_stored_path_is_a_symlink_out_is_not_drawn_or_shown(tmp_path):
    secret = _secret(tmp_path)
    s, root = _motion_project(tmp_path, [])
    try:
        panel = s.canon.get("panel-scene-ep1-1-s1").data
        link = root / "assets" / "panels" / "scene-ep1-1-s1" / "v2-link.png"
        os.symlink(secret, link)
        s.canon.upsert("panel", {**panel, "path": link.relative_to(root).as_posix()}, actor="human",
                       record_id="panel-scene-ep1-1-s1")
        with pytest.raises(PathOutsideProjectError, match="v2-link.png"):
            episode_spec(s.canon, root)
        [entry] = s.storyboard()
        shot = entry["shots"][0]
        assert shot["image"] is None and shot["status"] == "stale"
        assert any("outside the project" in r for r in shot["reasons"])
    finally:
        s.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"language": "../../escape"}, "is not a language code"),
    ({"language": "en/../../x"}, "is not a language code"),
    ({"episode": "../1"}, "is not an episode number"),
    ({"episode": 0}, "is not an episode number"),
])
def test_render_output_names_cannot_escape(tmp_path, kwargs, message):
    s, root = _motion_project(tmp_path, [])
    try:
        with pytest.raises(InputError, match=message):
            render_cut(s.canon, root, **kwargs)
        assert not (tmp_path / "escape").exists() and not (tmp_path / "x").exists()
    finally:
        s.close()


def test_contact_sheet_export_names_cannot_escape(tmp_path):
    s, root = _motion_project(tmp_path, [])
    try:
        for bad in ("../../x", -1, True):
            with pytest.raises(InputError, match="is not an episode number"):
                s.export_contact_sheet(bad)   # type: ignore[arg-type]
        png, pdf = s.export_contact_sheet(1)
        assert png.resolve().is_relative_to(root.resolve() / "renders") and pdf.exists()
    finally:
        s.close()


def test_the_run_context_resolves_through_the_project(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    ctx = DirectorContext(canon=None, bible=None, ledger=None, llm=None, project_root=project.root)  # type: ignore[arg-type]
    assert ctx.project == as_project(project.root)
    assert ctx.path("assets/x.png") == project.root.resolve() / "assets" / "x.png"
    assert ctx.rel(project.root / "assets" / "x.png") == "assets/x.png"
    for bad in ("/etc/passwd", "../x", "assets/../../x"):
        with pytest.raises(PathOutsideProjectError, match="outside the project"):
            ctx.path(bad)
