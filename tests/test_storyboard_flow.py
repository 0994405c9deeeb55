"""Storyboard approval flows: reference sheets, backgrounds, shot plans, panels, uploads, staleness.

Real animatic painter, real canon/bible/ledger/checkpointer; the LLM is scripted.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from agent.context import Targets
from memory.errors import InputError
from memory.project import create_project
from tests.fakes import ScriptedChatModel, accept_vision
from tools.backends.animatic import AnimaticPainter
from ui.session import DirectorSession

TARGETS = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)


@pytest.fixture
def session(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    s = DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=AnimaticPainter(), candidates=2)
    s.start()
    view = accept_vision(s, s.send("A shrine maiden hears rain spirits."))
    while view.pending["kind"] in ("series", "character", "location", "outline", "beats", "scene", "facts"):
        view = s.decide({"type": "accept"})
    yield s
    s.close()


def test_reference_sheet_candidates_pick_one_and_it_becomes_the_anchor(session):
    view = session.view()
    card = view.pending
    assert card["kind"] == "reference" and card["data"]["subject"] == "character-aiko"
    cands = card["data"]["candidates"]
    assert len(cands) == 2 and cands[0]["seed"] != cands[1]["seed"]
    assert all((session.project.root / c["path"]).exists() for c in cands)
    assert card["data"]["animatic"] and "Animatic sketches" in card["warnings"][0]
    session.decide({"type": "accept", "choice": 1})
    ref = session.canon.get("ref-character-aiko")
    assert ref.data["seed"] == cands[1]["seed"] and ref.data["path"].startswith("assets/panels/character-aiko/")
    assert Image.open(session.project.root / ref.data["path"]).tobytes() == \
        Image.open(session.project.root / cands[1]["path"]).tobytes()
    assert [e["action"] for e in session.ledger.entries() if e["record_id"] == "ref-character-aiko"] == ["accept"]


def test_reject_with_note_changes_the_request_and_redo_changes_seeds(session):
    first = session.view().pending["data"]["candidates"]
    view = session.decide({"type": "reject", "note": "add a red ribbon"})
    second = view.pending["data"]["candidates"]
    assert view.pending["attempt"] == 2 and {c["seed"] for c in first}.isdisjoint(c["seed"] for c in second)
    entry = [e for e in session.ledger.entries() if e["action"] == "propose"][-1]
    assert entry["record_id"] == "character-aiko"
    view = session.decide({"type": "redo"})
    assert view.pending["attempt"] == 3


def test_upload_your_own_drawing(session, tmp_path):
    drawing = tmp_path / "my_aiko.jpg"
    Image.new("RGB", (600, 800), (200, 30, 40)).save(drawing)
    session.upload(drawing)
    ref = session.canon.get("ref-character-aiko")
    assert ref.data["source"] == "upload" and ref.data["model"] == "upload"
    assert Image.open(session.project.root / ref.data["path"]).size == (600, 800)
    assert [e["action"] for e in session.ledger.entries() if e["record_id"] == "ref-character-aiko"][-1] == "upload"


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"this is not an image at all"), "not an image"),
    (lambda p: p.write_bytes(Path(__file__).read_bytes()[:10] + b"\x89PNG\r\n\x1a\n" + b"\0" * 40), "not an image"),
])
def test_bad_uploads_are_refused_and_the_card_stays(session, tmp_path, make, message):
    bad = tmp_path / "bad.png"
    make(bad)
    before = session.view().pending
    with pytest.raises(InputError, match=message):
        session.upload(bad)
    assert session.view().pending == before


def test_truncated_png_is_refused(session, tmp_path):
    good = tmp_path / "good.png"
    Image.effect_noise((400, 400), 60).convert("RGB").save(good)
    bad = tmp_path / "truncated.png"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        session.upload(bad)


def test_fifty_megapixel_upload_is_refused_before_decoding(session, tmp_path):
    huge = tmp_path / "huge.png"
    Image.new("1", (8660, 5774)).save(huge)  # 50 megapixels, a small file
    with pytest.raises(InputError, match="50 megapixels"):
        session.upload(huge)
    assert session.view().pending["kind"] == "reference"


def test_background_then_shot_plan_with_per_shot_edit_then_panels(session):
    session.decide({"type": "accept"})                                  # Aiko's sheet
    session.decide({"type": "accept"})                                  # Ren's sheet
    view = session.view()
    assert view.pending["kind"] == "background" and view.pending["data"]["subject"] == "location-hilltop-shrine"
    view = session.decide({"type": "accept"})
    assert view.pending["kind"] == "shots"
    plan = view.pending["data"]
    assert [s["lines"] for s in plan["shots"]] == [[], [1], [2]]
    plan["shots"][0]["camera_move"] = "tilt"                             # a per-shot edit
    view = session.decide({"type": "edit", "data": plan})
    shots = [r for r in session.canon.list("shot")]
    assert [r.id for r in shots] == ["scene-ep1-1-s1", "scene-ep1-1-s2", "scene-ep1-1-s3"]
    assert shots[0].data["camera_move"] == "tilt" and shots[1].data["line_ids"] == ["scene-ep1-1-l1"]
    assert view.pending["kind"] == "panel" and view.pending["data"]["subject"] == "scene-ep1-1-s1"
    made = view.pending["data"]["made_from"]
    assert made["shot"] == ["scene-ep1-1-s1", 1] and made["background"] == 1
    for _ in range(3):
        view = session.decide({"type": "accept", "choice": 0})
    board = session.storyboard()
    assert [sh["status"] for sh in board[0]["shots"]] == ["accepted"] * 3
    png, pdf = session.export_contact_sheet(1)
    assert Image.open(png).size[0] > 800 and pdf.read_bytes().startswith(b"%PDF")


def test_editing_a_look_marks_panels_stale_and_redraw_makes_a_new_version(session):
    for _ in range(4):  # two sheets, background, shot plan
        session.decide({"type": "accept"})
    for _ in range(3):
        session.decide({"type": "accept"})
    first = session.canon.get("panel-scene-ep1-1-s2")
    aiko = session.canon.find_by_name("character", "Aiko")
    session.canon.revise(aiko.id, {**aiko.data, "look_tags": ["green hair", "yellow raincoat"]}, actor="human")
    board = {sh["shot"].id: sh for sh in session.storyboard()[0]["shots"]}
    assert board["scene-ep1-1-s2"]["status"] == "stale" and board["scene-ep1-1-s1"]["status"] == "accepted"
    assert "characters changed" in board["scene-ep1-1-s2"]["reasons"][0]
    view = session.open_item("panel", "scene-ep1-1-s2")                  # the director decides to redraw
    assert view.pending["kind"] == "panel" and view.pending["data"]["subject"] == "scene-ep1-1-s2"
    session.decide({"type": "accept"})
    second = session.canon.get("panel-scene-ep1-1-s2")
    assert second.rev == first.rev + 1 and second.data["path"] != first.data["path"]
    assert (session.project.root / first.data["path"]).exists()         # the old version is kept
    statuses = [sh["status"] for sh in session.storyboard()[0]["shots"]]
    assert statuses == ["accepted", "accepted", "stale"]   # shot 3 shows Aiko too and awaits a decision


def test_missing_checkpoint_gives_a_failure_card_not_a_crash(tmp_path):
    from tools.backends.factory import painter_from_settings

    painter = painter_from_settings({"backend": "diffusers", "model": str(tmp_path / "nope")})
    project = create_project(tmp_path, "Fox Rain")
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter) as s:
        s.start()
        view = s.send("premise")
        while view.pending["kind"] != "reference":
            view = s.decide({"type": "accept"})
        assert "does not exist" in view.pending["failure"] and str(tmp_path / "nope") in view.pending["failure"]
        view = s.decide({"type": "accept"})
        assert "upload" in view.pending["error"]


def test_switching_painter_marks_generated_panels_stale(session):
    from agent.storyboard import image_status

    session.decide({"type": "accept"})
    ref = session.canon.get("ref-character-aiko")
    assert image_status(session.canon, ref, "animatic") == ("accepted", [])
    status, reasons = image_status(session.canon, ref, "diffusers")
    assert status == "stale" and "now paints with diffusers" in reasons[0]


def test_after_a_revert_the_agent_proposes_the_redraws(session):
    """A revert makes the pictures drawn from the reverted record stale; the agent puts the first
    redraw on the card at once and the next ones after each decision, then waits again."""
    for _ in range(4):  # two sheets, background, shot plan
        session.decide({"type": "accept"})
    for _ in range(3):
        view = session.decide({"type": "accept"})
    assert view.pending["kind"] == "input"
    aiko = session.canon.find_by_name("character", "Aiko")
    session.canon.revise(aiko.id, {**aiko.data, "look_tags": ["green hair", "yellow raincoat"]}, actor="human")
    session.canon.revise(aiko.id, {**aiko.data, "look_tags": ["blue hair", "red raincoat"]}, actor="human")
    session.undo(aiko.id)                         # back to green hair: not the look the pictures show
    view = session.view()                         # (a look is compared, not a revision): redraw them
    assert view.pending["kind"] == "reference" and view.pending["data"]["subject"] == aiko.id
    redrawn = []
    for _ in range(6):
        if not view.awaiting_decision:
            break
        assert view.pending["kind"] in ("reference", "panel") and not view.pending.get("failure")
        redrawn.append(view.pending["data"]["subject"])
        view = session.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
    assert redrawn == [aiko.id, "scene-ep1-1-s2", "scene-ep1-1-s3"]   # shot 1 shows no one
    assert view.pending["kind"] == "input"
    assert {sh["status"] for sh in session.storyboard()[0]["shots"]} == {"accepted"}
