"""`storyreel make` end to end on the embedded defaults (real llama.cpp SmolLM2, animatic panels,
Piper voices, the real render), and its refusals."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.context import Targets
from memory.canon import Canon
from memory.ledger import Ledger
from memory.project import create_project, open_project
from tests.fakes import SERIES, ScriptedChatModel
from tools.render.encode import ffprobe_exe
from ui.headless import decide_all, make_targets, run_make
from ui.session import DirectorSession
from ui.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def make(*args: str, timeout: int = 1200):
    return subprocess.run([sys.executable, "-m", "ui.cli", "make", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "OPENAI_BASE_URL": ""})


def test_make_needs_auto_accept(tmp_path):
    out = make("A premise.", "--project", str(tmp_path / "p"))
    assert out.returncode == 2 and "--auto-accept" in out.stderr and not (tmp_path / "p").exists()


@pytest.mark.slow
def test_make_end_to_end_on_embedded_defaults(tmp_path):
    """One episode on the embedded model: a valid MP4 with its captions, timeline and contact sheet,
    and its story so far for the next episode, all `auto`. CI time: `--redos 0` (a card the small
    model fails falls back at once; the redo loop has its own test) and one episode (later episodes,
    opening on the one before, are made by `tests/test_series_flow.py` with the scripted model)."""
    project = tmp_path / "fox-rain"
    out = make("A shrine maiden who hears rain spirits must stop a storm that erases memories.",
               "--project", str(project), "--auto-accept", "--shots", "1", "--episodes", "1", "--redos", "0")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for ep in ("ep01",):
        mp4 = project / "renders" / ep / "episode.mp4"
        probe = json.loads(subprocess.run([ffprobe_exe(), "-v", "error", "-show_entries",
                                           "stream=codec_name,width,height:format=duration", "-of", "json",
                                           str(mp4)], capture_output=True, text=True, check=True).stdout)
        assert {"codec_name": "h264", "width": 1080, "height": 1920} in probe["streams"]
        assert any(s["codec_name"] == "aac" for s in probe["streams"])
        assert float(probe["format"]["duration"]) > 2
        for name in ("episode.srt", "episode.vtt", "timeline.otio", "contact_sheet.png"):
            assert (mp4.parent / name).exists()
    canon = Canon(project / "canon.sqlite")
    try:
        assert canon.live("summary-ep1") is not None
        assert {r.data.get("episode") for r in canon.list("scene")} == {1}
    finally:
        canon.close()
    decisions = [e for e in Ledger(project / "ledger.jsonl").entries()
                 if e["action"] in ("accept", "edit", "upload", "reject", "redo", "revert", "start")]
    assert decisions and {e["actor"] for e in decisions} == {"auto"}
    assert {"series", "character", "shot", "panel", "voice", "take", "motion", "summary", "fact"} \
        <= {e["kind"] for e in decisions}
    assert "actor 'auto'" in out.stdout and "Cutting the episode" in out.stdout


# ----------------------------------------------------------------------------- model junk never dead-ends

class JunkModel(ScriptedChatModel):
    """Answers the titles in `junk` with the same bad reply every time (so repairs and redos cannot
    help); everything else as the scripted model does."""

    def __init__(self, junk: dict[str, Any]) -> None:
        super().__init__()
        self.junk = junk

    def complete(self, messages, *, json_schema=None, **kw):
        title = (json_schema or {}).get("title", "")
        if title in self.junk:
            self.calls.append({"messages": messages, "title": title, "seed": kw.get("seed")})
            reply = self.junk[title]
            return reply if isinstance(reply, str) else json.dumps(reply)
        return super().complete(messages, json_schema=json_schema, **kw)


PREMISES = {
    # the style card: a palette of marketing words and an HTML-escaped title; a character without a name
    "palette-and-names": ("A woodcutter marries a snow spirit who made him promise silence.", {
        "SeriesProposal": {**SERIES, "title": "&#34;Yuki-Onna&#34;", "palette": ["Energetic e-commerce business",
                                                                                "Trustworthy corporate blue-ish"]},
        "CharacterProposal": {"name": "", "role": "x" * 300, "personality": "",
                              "look_tags": [], "age": "&amp;"},
    }),
    # numbers the app owns, empty lists and a beats list in no shape at all
    "numbers-and-lists": ("A lighthouse keeper's daughter trades her voice to the sea.", {
        "OutlineProposal": {"episodes": [{"number": 297, "title": "", "logline": ""}]},
        "BeatsProposal": {"episode": 297, "beats": [{"kind": "climax", "summary": ""}]},
        "SceneProposal": {"episode": 0, "number": 297, "title": "S", "location": "Mars", "characters": [],
                          "action": "", "lines": []},
        "PropProposal": {"name": "", "description": "", "look_tags": "not a list"},
    }),
    # not JSON at all, and a shot plan with no shots
    "prose-and-empty-plans": ("A courier in a flooded Tokyo delivers letters to ghosts.", {
        "LocationProposal": "Sure! Here is a location: the old bridge. I hope you like it.",
        "ShotPlanProposal": {"scene_id": "whatever", "shots": []},
        "CharacterProposal": "<html>&#60;character&#62;</html>",
    }),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(PREMISES))
def test_make_finishes_on_model_junk_with_auto_fallbacks_in_the_ledger(tmp_path, case):
    premise, junk = PREMISES[case]
    out = io.StringIO()
    project = tmp_path / case
    rc = run_make(Settings(projects_dir=tmp_path), premise, project, shots=1, model=JunkModel(junk), out=out)
    assert rc == 0, out.getvalue()[-3000:]
    assert (project / "renders" / "ep01" / "episode.mp4").stat().st_size > 0
    entries = Ledger(project / "ledger.jsonl").entries()
    fallbacks = [e for e in entries if e["action"] == "fallback"]
    assert fallbacks and {e["actor"] for e in fallbacks} == {"auto"}
    assert all(e["note"] for e in fallbacks)
    decisions = [e for e in entries if e["action"] in ("accept", "edit", "upload", "reject", "redo", "revert")]
    assert {e["actor"] for e in decisions} == {"auto"}
    canon = Canon(project / "canon.sqlite")
    text = json.dumps([r.data for r in canon.list()])
    assert "&#" not in text and "&amp;" not in text
    shots = canon.list("shot")
    assert shots and all(s.data["characters"] for s in shots if s.data.get("line_ids"))  # speakers on screen
    assert len(canon.list("character")) == 2 and canon.list("panel")


@pytest.mark.parametrize("case", list(PREMISES))
def test_the_writers_room_never_dead_ends_on_model_junk(tmp_path, case):
    """The make loop (`decide_all`) over the writers' room, without painting or rendering (fast)."""
    premise, junk = PREMISES[case]
    project = create_project(tmp_path, "Junk", targets=make_targets(2).as_settings())
    lines: list[str] = []
    with DirectorSession(project, JunkModel(junk), targets=Targets.from_settings(project.settings),
                         actor="auto") as s:
        s.start()
        view = decide_all(s, s.send(premise), lines.append)
        assert view.pending["kind"] == "input"
        assert s.canon.live("series") and s.canon.live("style") and s.canon.list("scene")
        from tools.backends._draw import parse_color
        assert all(parse_color(c) for c in s.canon.get("style").data["palette"])
        fallbacks = [e for e in s.ledger.entries() if e["action"] == "fallback"]
        assert fallbacks and {e["actor"] for e in fallbacks} == {"auto"}
        junk_kinds = {t.removesuffix("Proposal").lower() for t in junk} - {"shotplan"}
        assert junk_kinds <= {e["kind"] for e in fallbacks}
        assert any("fallback after" in line for line in lines)
        scene = s.canon.list("scene")[0].data
        cast = {r.data["name"] for r in s.canon.list("character")}
        assert scene["lines"] and {ln["speaker"] for ln in scene["lines"]} <= cast | {"Narrator"}
        assert "&#" not in json.dumps([r.data for r in s.canon.list()])


@pytest.mark.parametrize("redos", [0, 1, 3])
def test_a_failed_card_is_redone_redos_times_then_its_safe_draft_is_accepted(tmp_path, redos):
    """`make --redos N`: each card the model keeps failing is redone N times, then falls back."""
    premise, junk = PREMISES["prose-and-empty-plans"]
    project = create_project(tmp_path, "Junk", targets=make_targets(1).as_settings())
    lines: list[str] = []
    with DirectorSession(project, JunkModel(junk), targets=Targets.from_settings(project.settings),
                         actor="auto") as s:
        s.start()
        decide_all(s, s.send(premise), lines.append, redos=redos)
        redone = [e for e in s.ledger.entries() if e["action"] == "redo" and e.get("kind") == "location"]
        fell_back = [e for e in s.ledger.entries() if e["action"] == "fallback" and e.get("kind") == "location"]
    assert len(redone) == redos and fell_back
    assert sum(f"fallback after {redos} redos" in line for line in lines) >= 1


@pytest.mark.parametrize("value", ["-1", "11"])
def test_make_refuses_redos_out_of_range_naming_it(tmp_path, value):
    out = make("A premise.", "--project", str(tmp_path / "p"), "--auto-accept", "--redos", value, timeout=120)
    assert out.returncode != 0 and f"--redos {value}" in out.stdout + out.stderr


def test_make_writes_its_targets_into_the_project_it_creates(tmp_path):
    from ui.headless import open_or_create

    project = open_or_create(tmp_path / "made", shots=5)
    assert Targets.from_settings(open_project(project.root).settings) == make_targets(5)
    assert open_project(project.root).settings["targets"]["locations"] == 1
