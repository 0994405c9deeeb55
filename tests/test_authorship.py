"""The authorship report: a project with known decisions made through the real canon and ledger
APIs, and every figure of the report checked exactly (categories, shares, edit ratios, models,
rejections), then its HTML / PDF / JSON files, the CLI, and the OTIO clip metadata."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from memory.authorship import CATEGORIES, authorship_report, compare, edit_ratio, flat_text
from memory.canon import Canon, Record
from memory.errors import InputError
from memory.ledger import Ledger
from memory.project import Project, create_project
from ui.credits import credits_view
from ui.report import annotate_timeline, write_report

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"


def _commit(canon: Canon, ledger: Ledger, pid: str, kind: str, write, *, actor: str = "human",
            action: str = "accept", proposed: Any = None, model: str | None = None,
            **more: Any) -> list[Record]:
    """An accepted proposal the way the commit node writes it: canon + commit row, then the ledger."""
    inputs: dict[str, Any] = {"retrieved": [], "notes": [], "proposed": proposed, **more}
    if model:
        inputs["model"] = model
    records, _ = canon.commit_proposal(pid, write, kind=kind, actor=actor, action=action,
                                       note=f"proposal {pid}", inputs=inputs)
    ledger.complete(canon, pid)
    return records


def _png(project: Project, rel: str, colour: tuple[int, int, int]) -> str:
    path = project.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (90, 160), colour).save(path)
    return rel


SCENE_1 = {"episode": 1, "number": 1, "title": "Rain", "location": "Hilltop Shrine", "characters": ["Aiko", "Ren"],
           "action": "Rain hammers the steps.",
           "lines": [{"speaker": "Aiko", "line": "Do you hear that?", "emotion": "scared"},
                     {"speaker": "Ren", "line": "Only rain.", "emotion": "neutral"}]}
SHOTS = {"scene_id": "scene-ep1-1", "shots": [
    {"framing": "wide", "camera_move": "static", "lines": [1], "duration_s": 2.0},
    {"framing": "close-up", "camera_move": "static", "lines": [2], "duration_s": 2.0}]}


def build(root: Path) -> Project:
    """The scripted project. Expected authorship, area by area:

    story:    series, style (accepted); Aiko (edited, then reverted to that edit); Ren (written: the
              proposal failed, the director filled in the form); Kaito (auto); Hilltop Shrine
              (written: a direct instruction); Mika (edited: a direct change of an accepted
              proposal); scene 1.1 (accepted: only its lines were edited); scene 2.1 (auto)
    dialogue: 1.1 l1 accepted, l2 edited, l3 written (added to the proposal); 2.1 l1 auto
    visuals:  shot s1 accepted, s2 edited; panel s1 accepted (animatic), panel s2 uploaded
    voices:   Aiko's casting auto; take l1 accepted, l2 uploaded, l3 auto
    edit:     motion of scene 1.1 accepted
    """
    project = create_project(root, "Fox Rain")
    canon, ledger = Canon(project.canon_path), Ledger(project.ledger_path)
    try:
        series = {"title": "Fox Rain", "logline": "A shrine maiden hears rain spirits.", "art_style": "cel",
                  "palette": ["navy"], "tone": "bittersweet", "target_episode_seconds": 60}
        _commit(canon, ledger, "p-series", "series", lambda: [
            canon.upsert("series", {k: series[k] for k in ("title", "logline")}, actor="human", record_id="series"),
            canon.upsert("style", {k: series[k] for k in ("art_style", "palette", "tone", "target_episode_seconds")},
                         actor="human", record_id="style")], proposed=series, model=MODEL)
        # Aiko: proposed "Aiko", edited to "Aiko Mori"; later renamed directly, then reverted to rev 1
        aiko_p = {"name": "Aiko", "age": "17", "personality": "kind"}
        aiko_e = {**aiko_p, "name": "Aiko Mori"}
        _commit(canon, ledger, "p-aiko", "character", lambda: [
            canon.create("character", aiko_e, actor="human", record_id="character-aiko")],
            action="edit", proposed=aiko_p, model=MODEL)
        rec = canon.revise("character-aiko", {**aiko_e, "name": "Aiko Kurosawa"}, actor="human")
        ledger.append(actor="human", action="edit", record_id=rec.id, kind=rec.kind, rev=rec.rev, note="rename")
        _commit(canon, ledger, "undo-aiko", "character", lambda: [
            canon.revert("character-aiko", 1, actor="human", note="undo")], action="revert", from_rev=2, to_rev=1)
        _commit(canon, ledger, "p-ren", "character", lambda: [
            canon.create("character", {"name": "Ren", "age": "18"}, actor="human", record_id="character-ren")],
            action="edit", proposed=None)
        _commit(canon, ledger, "p-kaito", "character", lambda: [
            canon.create("character", {"name": "Kaito"}, actor="auto", record_id="character-kaito")],
            actor="auto", proposed={"name": "Kaito"}, model=MODEL)
        rec = canon.create("location", {"name": "Hilltop Shrine"}, actor="human", record_id="location-shrine")
        ledger.append(actor="human", action="edit", record_id=rec.id, kind=rec.kind, rev=rec.rev,
                      note="add the shrine")
        _commit(canon, ledger, "p-mika", "character", lambda: [
            canon.create("character", {"name": "Mika", "age": "30"}, actor="human", record_id="character-mika")],
            proposed={"name": "Mika", "age": "30"}, model=MODEL)
        rec = canon.revise("character-mika", {"name": "Mika", "age": "40"}, actor="human")
        ledger.append(actor="human", action="edit", record_id=rec.id, kind=rec.kind, rev=rec.rev, note="age 40")
        # scene 1.1: line 2 edited ("Only rain." -> "Only the rain."), line 3 added by the director
        edited = {**SCENE_1, "lines": [SCENE_1["lines"][0], {**SCENE_1["lines"][1], "line": "Only the rain."},
                                       {"speaker": "Aiko", "line": "Listen.", "emotion": "calm"}]}
        scene_data = {**edited, "lines": [{**ln, "id": f"scene-ep1-1-l{i}"} for i, ln in enumerate(edited["lines"], 1)]}
        _commit(canon, ledger, "p-scene", "scene", lambda: [
            canon.upsert("scene", scene_data, actor="human", record_id="scene-ep1-1")],
            action="edit", proposed=SCENE_1, model=MODEL)
        scene2 = {"episode": 2, "number": 1, "title": "Station", "lines": [
            {"speaker": "Ren", "line": "Late again.", "emotion": "neutral", "id": "scene-ep2-1-l1"}]}
        _commit(canon, ledger, "p-scene2", "scene", lambda: [
            canon.upsert("scene", scene2, actor="auto", record_id="scene-ep2-1")], actor="auto",
            proposed={k: v for k, v in scene2.items()}, model=MODEL)
        # shots: shot 2 framing edited "close-up" -> "extreme close-up"
        plan = {**SHOTS, "shots": [SHOTS["shots"][0], {**SHOTS["shots"][1], "framing": "extreme close-up"}]}
        _commit(canon, ledger, "p-shots", "shots", lambda: [
            canon.upsert("shot", {**s, "scene_id": "scene-ep1-1", "index": i,
                                  "line_ids": [f"scene-ep1-1-l{n}" for n in s["lines"]]},
                         actor="human", record_id=f"scene-ep1-1-s{i}")
            for i, s in enumerate(plan["shots"], 1)], action="edit", proposed=SHOTS, model=MODEL)
        p1 = _png(project, "assets/panels/scene-ep1-1-s1/v1.png", (200, 40, 40))
        _commit(canon, ledger, "p-panel1", "panel", lambda: [canon.upsert("panel", {
            "kind": "panel", "subject": "scene-ep1-1-s1", "path": p1, "model": "animatic", "source": "generated"},
            actor="human", record_id="panel-scene-ep1-1-s1")], proposed={"candidates": [{"path": p1}]})
        p2 = _png(project, "assets/panels/scene-ep1-1-s2/v1.png", (40, 40, 200))
        _commit(canon, ledger, "p-panel2", "panel", lambda: [canon.upsert("panel", {
            "kind": "panel", "subject": "scene-ep1-1-s2", "path": p2, "model": "upload", "source": "upload"},
            actor="human", record_id="panel-scene-ep1-1-s2")], action="upload", proposed=None)
        _commit(canon, ledger, "p-cast", "casting", lambda: [canon.upsert("voice", {
            "engine": "kokoro", "voice": "af_bella", "rate": 1.0, "character": "character-aiko"},
            actor="auto", record_id="voice-character-aiko")], actor="auto", proposed={"engine": "kokoro"})
        for n, (actor, action, source) in enumerate(
                [("human", "accept", "generated"), ("human", "upload", "upload"), ("auto", "accept", "generated")], 1):
            _commit(canon, ledger, f"p-take{n}", "take", lambda n=n, actor=actor, source=source: [canon.upsert(
                "take", {"line_id": f"scene-ep1-1-l{n}", "language": "en", "path": f"assets/audio/l{n}.wav",
                         "source": source, "made_from": {"voice": ["voice-character-aiko", 1]}},
                actor=actor, record_id=f"take-scene-ep1-1-l{n}-en")], actor=actor, action=action, proposed=None)
        _commit(canon, ledger, "p-motion", "motion", lambda: [canon.upsert("motion", {
            "scene_id": "scene-ep1-1", "shots": []}, actor="human", record_id="motion-scene-ep1-1")],
            proposed={"scene_id": "scene-ep1-1", "shots": []})
        for kind, target, note in [("character", None, "not another orphan"), ("panel", None, "too dark"),
                                   ("scene", "scene-ep1-1", "less exposition"),
                                   ("scene", "scene-ep2-1", "no flashback")]:
            ledger.append(actor="human", action="reject", record_id=target, kind=kind, note=note)
        ledger.append(actor="human", action="redo", kind="character", note="")
    finally:
        canon.close()
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return build(tmp_path_factory.mktemp("authorship"))


def _report(project: Project, episode: int | None = None):
    with Canon(project.canon_path) as canon:
        return authorship_report(canon, Ledger(project.ledger_path), episode=episode)


def _r(a: str, b: str) -> float:
    return round(1 - SequenceMatcher(None, a, b, autojunk=False).ratio(), 4)


# ----------------------------------------------------------------------------- the figures


@pytest.mark.parametrize(("proposed", "accepted", "expected"), [
    ("Aiko", "Aiko", 0.0),
    ("Aiko", "Aiko Mori", round(5 / 13, 4)),          # 8 of 13 characters match: 1 - 2*4/13
    ("Only rain.", "Only the rain.", round(4 / 24, 4)),
    ("", "all new", 1.0),
    (["a", "b"], ["a", "b"], 0.0),
    ({"age": "30", "name": "Mika"}, {"age": "40", "name": "Mika"}, round(2 / 36, 4)),   # 17 of 18 kept
])
def test_edit_ratio_is_one_minus_the_sequence_matcher_ratio(proposed, accepted, expected):
    assert edit_ratio(proposed, accepted) == expected


@pytest.mark.parametrize(("value", "text"), [
    (None, ""), ("x", "x"), (2.0, "2.0"), (True, "true"), (["a", 1], "a\n1"),
    ({"b": "2", "a": ["x", "y"]}, "a: x\ny\nb: 2"),
])
def test_flat_text_table(value, text):
    assert flat_text(value) == text


def test_compare_names_changed_fields_and_ignores_what_canon_adds():
    changed, ratio = compare({"framing": "close-up", "lines": [2]},
                             {"framing": "extreme close-up", "lines": [2], "index": 2, "id": "x"})
    assert changed == {"framing": round(1 - 16 / 24, 4)}
    assert ratio == _r("framing: close-up\nlines: 2", "framing: extreme close-up\nlines: 2")


def _cats(report) -> dict[str, str]:
    return {i.item_id: i.category for i in report.items}


def test_every_item_has_the_category_of_the_decision_behind_its_content(project):
    report = _report(project)
    assert _cats(report) == {
        "series": "accepted", "style": "accepted", "character-aiko": "edited", "character-ren": "written",
        "character-kaito": "auto", "location-shrine": "written", "character-mika": "edited",
        "scene-ep1-1": "accepted", "scene-ep2-1": "auto",
        "scene-ep1-1-l1": "accepted", "scene-ep1-1-l2": "edited", "scene-ep1-1-l3": "written",
        "scene-ep2-1-l1": "auto",
        "scene-ep1-1-s1": "accepted", "scene-ep1-1-s2": "edited",
        "panel-scene-ep1-1-s1": "accepted", "panel-scene-ep1-1-s2": "uploaded",
        "voice-character-aiko": "auto", "take-scene-ep1-1-l1-en": "accepted",
        "take-scene-ep1-1-l2-en": "uploaded", "take-scene-ep1-1-l3-en": "auto",
        "motion-scene-ep1-1": "accepted"}
    aiko = report.items_of("character-aiko")[0]
    assert (aiko.rev, aiko.action, aiko.proposal_id) == (1, "revert to rev 1: edit", "p-aiko")


def test_edited_items_name_their_fields_and_exact_edit_ratios(project):
    by_id = {i.item_id: i for i in _report(project).items}
    expected = {
        "character-aiko": ({"name": round(5 / 13, 4)},
                           _r("age: 17\nname: Aiko\npersonality: kind", "age: 17\nname: Aiko Mori\npersonality: kind")),
        "character-mika": ({"age": 0.5}, round(2 / 36, 4)),
        "scene-ep1-1-l2": ({"line": round(4 / 24, 4)},
                           _r("emotion: neutral\nline: Only rain.\nspeaker: Ren",
                              "emotion: neutral\nline: Only the rain.\nspeaker: Ren")),
        "scene-ep1-1-s2": ({"framing": round(1 - 16 / 24, 4)},
                           _r("camera_move: static\nduration_s: 2.0\nframing: close-up\nlines: 2",
                              "camera_move: static\nduration_s: 2.0\nframing: extreme close-up\nlines: 2")),
    }
    for item_id, (fields, ratio) in expected.items():
        assert (by_id[item_id].changed_fields, by_id[item_id].edit_ratio) == (fields, ratio), item_id
    assert by_id["character-aiko"].edit_ratio == round(5 / 77, 4)     # 36 of 41 characters kept
    assert all(i.edit_ratio is None and not i.changed_fields for i in by_id.values() if i.category != "edited")


def _counts(summary) -> tuple[int, ...]:
    return tuple(summary.counts[c] for c in CATEGORIES)


def test_shares_per_area_for_the_series(project):
    report = _report(project)
    #                                  written accepted edited auto uploaded
    assert _counts(report.area("story")) == (2, 3, 2, 2, 0)
    assert _counts(report.area("dialogue")) == (1, 1, 1, 1, 0)
    assert _counts(report.area("visuals")) == (0, 2, 1, 0, 1)
    assert _counts(report.area("voices")) == (0, 1, 0, 2, 1)
    assert _counts(report.area("edit")) == (0, 1, 0, 0, 0)
    assert _counts(report.overall) == (3, 8, 4, 5, 2) and report.overall.total == 22
    assert report.area("story").shares == {"written": round(2 / 9, 4), "accepted": round(3 / 9, 4),
                                           "edited": round(2 / 9, 4), "auto": round(2 / 9, 4), "uploaded": 0.0}
    assert report.area("visuals").shares["accepted"] == 0.5
    assert report.area("dialogue").mean_edit_ratio == round(4 / 96, 4)


def test_models_per_area(project):
    report = _report(project)
    # Ren's form and the shrine name no model; Mika keeps the model of the proposal she changed
    assert report.area("story").models == {MODEL: 7, "not recorded": 2}
    assert report.area("visuals").models == {MODEL: 2, "animatic": 1, "upload": 1}
    assert report.area("voices").models == {"kokoro:af_bella": 3, "upload": 1}
    assert report.area("dialogue").models == {MODEL: 4}


def test_rejections_and_their_notes(project):
    report = _report(project)
    assert [(r.area, r.kind, r.target, r.note) for r in report.rejections] == [
        ("story", "character", None, "not another orphan"), ("visuals", "panel", None, "too dark"),
        ("story", "scene", "scene-ep1-1", "less exposition"), ("story", "scene", "scene-ep2-1", "no flashback")]
    assert (report.area("story").rejections, report.area("visuals").rejections, report.overall.rejections) == (3, 1, 4)


def test_an_episode_report_leaves_other_episodes_out(project):
    report = _report(project, episode=1)
    assert "scene-ep2-1" not in _cats(report) and "scene-ep2-1-l1" not in _cats(report)
    assert _counts(report.area("story")) == (2, 3, 2, 1, 0)
    assert _counts(report.area("dialogue")) == (1, 1, 1, 0, 0)
    assert [r.note for r in report.rejections] == ["not another orphan", "too dark", "less exposition"]
    assert report.name == "authorship-ep01" and _report(project).name == "authorship-series"
    with pytest.raises(InputError, match="episode 7 has nothing"):
        _report(project, episode=7)
    with pytest.raises(InputError, match="episode 0"):
        _report(project, episode=0)


def test_an_old_commit_without_the_proposal_counts_as_edited_with_the_ratio_unknown(tmp_path):
    project = create_project(tmp_path, "Old")
    with Canon(project.canon_path) as canon:
        canon.commit_proposal("p", lambda: [canon.create("character", {"name": "Aiko"}, actor="human")],
                              kind="character", actor="human", action="edit", inputs={"notes": []})
        report = authorship_report(canon, [])
    (item,) = report.items
    assert (item.category, item.edit_ratio, item.changed_fields) == ("edited", None, {})
    assert report.area("story").mean_edit_ratio is None


def test_an_edit_that_changed_nothing_is_accepted_as_is(tmp_path):
    project = create_project(tmp_path, "Same")
    with Canon(project.canon_path) as canon:
        canon.commit_proposal("p", lambda: [canon.create("character", {"name": "Aiko"}, actor="human")],
                              kind="character", actor="human", action="edit", inputs={"proposed": {"name": "Aiko"}})
        assert [i.category for i in authorship_report(canon, []).items] == ["accepted"]


def test_bookkeeping_revisions_keep_the_authorship_they_had(tmp_path):
    """An automatic ear check of a take, a renumbered shot: what the record says did not change."""
    project = create_project(tmp_path, "Checks")
    with Canon(project.canon_path) as canon:
        ledger = Ledger(project.ledger_path)
        take = {"line_id": "l1", "language": "en", "path": "a.wav", "source": "generated"}
        _commit(canon, ledger, "p-take", "take", lambda: [
            canon.upsert("take", take, actor="human", record_id="take-l1-en")])
        _commit(canon, ledger, "check-take", "take", lambda: [
            canon.upsert("take", {**take, "check": {"wer": 0.0}}, actor="auto", record_id="take-l1-en")],
            actor="auto", action="edit", proposed=None)
        shot = {"framing": "wide", "index": 2}
        _commit(canon, ledger, "p-shot", "shots", lambda: [
            canon.upsert("shot", shot, actor="human", record_id="s")], action="edit",
            proposed={"shots": [{"framing": "x"}, {"framing": "medium"}]})
        _commit(canon, ledger, "renumber", "structure", lambda: [
            canon.revise("s", {**shot, "index": 1}, actor="human")], proposed=None)
        report = authorship_report(canon, ledger)
    by_id = {i.item_id: i for i in report.items}
    assert (by_id["take-l1-en"].category, by_id["take-l1-en"].actor, by_id["take-l1-en"].rev) == ("accepted", "human", 1)
    assert (by_id["s"].category, by_id["s"].rev, by_id["s"].changed_fields) == ("edited", 1, {"framing": _r("medium", "wide")})


def test_the_shot_authorship_for_the_timeline(project):
    shot = _report(project, episode=1).shot_authorship("scene-ep1-1-s2")
    assert shot["shot"]["category"] == "edited" and shot["shot"]["changed_fields"] == ["framing"]
    assert shot["panel"]["category"] == "uploaded" and shot["panel"]["model"] == "upload"
    assert [(x["id"], x["category"]) for x in shot["lines"]] == [("scene-ep1-1-l2", "edited")]
    assert [(x["id"], x["category"]) for x in shot["takes"]] == [("take-scene-ep1-1-l2-en", "uploaded")]


# ----------------------------------------------------------------------------- files


def test_html_json_and_pdf_files(project, tmp_path):
    report = _report(project, episode=1)
    files = write_report(report, project, tmp_path / "out")
    assert {k: p.name for k, p in files.items()} == {
        "html": "authorship-ep01.html", "pdf": "authorship-ep01.pdf", "json": "authorship-ep01.json"}
    page = files["html"].read_text(encoding="utf-8")
    assert page.count("data:image/jpeg;base64,") == 2        # both panels, inline
    assert "src='http" not in page and "<link" not in page   # self-contained
    assert "less exposition" in page and "proposed and edited" in page and "Aiko Mori" in page
    assert files["pdf"].read_bytes().startswith(b"%PDF")
    data = json.loads(files["json"].read_text(encoding="utf-8"))
    assert data["name"] == "authorship-ep01" and len(data["items"]) == report.overall.total
    assert {a["area"]: a["counts"]["edited"] for a in data["areas"]} == {
        "story": 2, "dialogue": 1, "visuals": 1, "voices": 0, "edit": 0}
    assert write_report(report, project)["json"] == project.root / "reports" / "authorship-ep01.json"


@pytest.mark.slow   # loads the CJK font (a few seconds)
def test_pdf_shows_japanese_names(tmp_path):
    project = create_project(tmp_path, "Kitsune")
    with Canon(project.canon_path) as canon:
        canon.create("character", {"name": "愛子", "personality": "やさしい"}, actor="human")
        report = authorship_report(canon, [])
    pdf = write_report(report, project, formats=("pdf",))["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF")
    if Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").is_file():
        assert b"NotoSansCJK" in pdf


def test_credits_view(project):
    with Canon(project.canon_path) as canon:
        view = credits_view(canon, Ledger(project.ledger_path), project, episode=1)
    assert "| story | 2 (25%) | 3 (38%) | 2 (25%) | 1 (12%) | 0 (0%) | 8 | 2 |" in view.markdown
    assert "not another orphan" in view.markdown and "character Aiko Mori | name (0.38)" in view.markdown
    assert sorted(p.suffix for p in view.files) == [".html", ".json", ".pdf"]
    assert all(p.parent == project.root / "reports" for p in view.files)


def test_the_cli_writes_the_report(project, tmp_path):
    out = tmp_path / "cli"
    env = {**os.environ, "STORYREEL_HOME": str(project.root.parent)}
    done = subprocess.run([sys.executable, "-m", "ui.cli", "report", str(project.root), "--episode", "1",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "20 items" in done.stdout and "3 rejections" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["authorship-ep01.html", "authorship-ep01.json",
                                                     "authorship-ep01.pdf"]
    bad = subprocess.run([sys.executable, "-m", "ui.cli", "report", str(project.root), "--episode", "9",
                          "--format", "json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert bad.returncode == 2 and "episode 9 has nothing" in bad.stderr


def test_the_timeline_clips_carry_each_shots_authorship(project, tmp_path):
    import opentimelineio as otio

    from tools.render.exports import write_otio
    from tools.render.spec import EpisodeSpec, ShotSpec

    spec = EpisodeSpec(shots=tuple(ShotSpec(shot_id=f"scene-ep1-1-s{i}",
                                            panel=project.root / f"assets/panels/scene-ep1-1-s{i}/v1.png",
                                            duration=1.0) for i in (1, 2)), width=90, height=160)
    path = write_otio(spec, tmp_path / "timeline.otio")
    assert annotate_timeline(path, _report(project, episode=1)) == 2
    clips = {c.name: c for c in otio.adapters.read_from_file(str(path)).find_clips()}
    s1, s2 = (clips[f"scene-ep1-1-s{i}"].metadata["storyreel"]["authorship"] for i in (1, 2))
    assert s1["shot"]["category"] == "accepted" and s1["panel"]["model"] == "animatic"
    assert s2["shot"]["category"] == "edited" and s2["shot"]["edit_ratio"] == pytest.approx(
        _r("camera_move: static\nduration_s: 2.0\nframing: close-up\nlines: 2",
           "camera_move: static\nduration_s: 2.0\nframing: extreme close-up\nlines: 2"))
    assert clips["scene-ep1-1-s1"].metadata["storyreel"]["shot_id"] == "scene-ep1-1-s1"   # the rest is kept


# ----------------------------------------------------------------------------- the real review loop


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """Series accepted, the first character edited (age 17 -> 29), the next rejected with a note."""
    from agent.context import Targets
    from tests.fakes import ScriptedChatModel, accept_vision
    from ui.session import DirectorSession

    project = create_project(tmp_path_factory.mktemp("reviewed"), "Fox Rain")
    with DirectorSession(project, ScriptedChatModel(),
                         targets=Targets(characters=2, locations=1, props=1, episodes=3, scenes=2)) as s:
        s.start()
        accept_vision(s, s.send("A shrine maiden hears rain spirits."))
        view = s.decide({"type": "accept"})
        assert view.pending["kind"] == "character"
        view = s.decide({"type": "edit", "data": dict(view.pending["data"], age="29")})
        s.decide({"type": "reject", "note": "no rival, a mentor"})
        yield project, _report(project)


def test_the_review_loop_gives_the_report_its_categories_and_rejections(reviewed):
    _, report = reviewed
    cats = _cats(report)
    assert (cats["series"], cats["style"]) == ("accepted", "accepted")
    aiko = next(i for i in report.items if i.label == "character Aiko")
    assert aiko.category == "edited" and aiko.actor == "human"
    assert [(r.area, r.kind, r.note) for r in report.rejections] == [("story", "character", "no rival, a mentor")]


def test_the_review_loop_keeps_what_was_proposed_for_the_edit_ratio(reviewed):
    _, report = reviewed
    aiko = next(i for i in report.items if i.label == "character Aiko")
    assert aiko.changed_fields == {"age": _r("17", "29")}


# ----------------------------------------------------------------------------- the rendered episode


def test_write_authorship_puts_the_report_beside_the_cut_and_never_raises(project, tmp_path, caplog):
    import shutil

    import opentimelineio as otio

    from agent.cut import write_authorship
    from tools.render.exports import write_otio
    from tools.render.spec import EpisodeSpec, ShotSpec

    folder = tmp_path / "renders" / "ep01"
    folder.mkdir(parents=True)
    spec = EpisodeSpec(shots=(ShotSpec(shot_id="scene-ep1-1-s1", panel=project.root / "x.png", duration=1.0),),
                       width=90, height=160)
    otio_path = write_otio(spec, folder / "timeline.otio")
    with Canon(project.canon_path) as canon:
        written = write_authorship(canon, project, 1, otio_path)
        assert sorted(p.name for p in written.values()) == [
            "authorship-ep01.html", "authorship-ep01.json", "authorship-ep01.pdf", "timeline.otio"]
        assert all(p.parent == folder for p in written.values())
        (clip,) = otio.adapters.read_from_file(str(otio_path)).find_clips()
        assert clip.metadata["storyreel"]["authorship"]["shot"]["category"] == "accepted"
        # a report that cannot be written (its folder is a file) is logged, and the render goes on
        shutil.rmtree(folder)
        folder.parent.joinpath("ep01").write_text("not a folder")
        assert write_authorship(canon, project, 1, folder / "timeline.otio") == {}
    assert "authorship report of episode 1 was not written" in caplog.text


@pytest.mark.slow
def test_a_rendered_episode_includes_its_report_and_authored_timeline(tmp_path):
    import numpy as np
    import opentimelineio as otio
    import soundfile as sf

    from agent.cut import render_cut

    project = build(tmp_path)
    with Canon(project.canon_path) as canon:
        for n in (1, 2):   # real recordings for the two voiced shots
            take = canon.get(f"take-scene-ep1-1-l{n}-en")
            wav = project.root / take.data["path"]
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(wav, (0.1 * np.sin(np.linspace(0, 440 * 2 * np.pi * 0.4, 19200))).astype("float32"), 48000)
            canon.revise(take.id, {**take.data, "duration_s": 0.4}, actor=take.actor)
        result = render_cut(canon, project.root)
    folder = result.mp4.parent
    assert {"authorship-ep01.html", "authorship-ep01.pdf", "authorship-ep01.json"} <= {p.name for p in folder.iterdir()}
    clips = {c.name: c for c in otio.adapters.read_from_file(str(result.otio)).find_clips()}
    assert clips["scene-ep1-1-s2"].metadata["storyreel"]["authorship"]["panel"]["category"] == "uploaded"
    assert list(clips["scene-ep1-1-s2"].metadata["storyreel"]["authorship"]["shot"]["changed_fields"]) == ["framing"]
