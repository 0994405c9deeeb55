"""What the studio's Episode tab reads without a browser: the last render on disk (also after a
restart) and the stale or missing panels it names before rendering. Real session, animatic painter,
scripted model."""
from __future__ import annotations

import pytest

from agent.context import Targets
from memory.project import create_project
from tests.fakes import ScriptedChatModel, accept_vision
from tools.backends.animatic import AnimaticPainter
from ui.app import last_render, render_warnings
from ui.session import DirectorSession

WRITING = ("series", "character", "location", "prop", "outline", "beats", "scene", "facts", "shots",
           "reference", "background", "panel")


@pytest.fixture
def session(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    s = DirectorSession(project, ScriptedChatModel(), painter=AnimaticPainter(), candidates=1,
                        targets=Targets(characters=2, locations=1, props=0, episodes=1, scenes=1))
    s.start()
    view = accept_vision(s, s.send("A shrine maiden hears rain spirits."))
    while view.awaiting_decision and view.pending["kind"] in WRITING:
        view = s.decide({"type": "accept"})
    yield s
    s.close()


def test_render_warnings_name_stale_and_missing_panels(session):
    assert not [w for w in render_warnings(session) if "panel" in w]   # every panel accepted, current
    aiko = session.canon.get("character-aiko")
    session.canon.upsert("character", {**aiko.data, "look_tags": ["white kimono", "long black hair"]},
                         actor="human", record_id=aiko.id, note="new look")
    stale = [w for w in render_warnings(session) if "panel" in w]
    assert stale and all("stale" in w for w in stale)
    assert any("scene-ep1-1-s2" in w for w in stale)          # Aiko is in shot 2
    assert not any("scene-ep1-1-s1:" in w for w in stale)     # no one in shot 1
    session.undo("panel-scene-ep1-1-s1", 0)                    # a panel deleted
    assert any("scene-ep1-1-s1" in w and "no accepted panel" in w for w in render_warnings(session))
    assert any("take" in w for w in render_warnings(session))  # nothing voiced yet: named too


@pytest.mark.parametrize("files, language, shown", [
    ([], "en", []),
    (["episode.srt"], "en", []),                                  # no MP4: nothing to show
    (["episode.mp4", "episode.srt", "timeline.otio"], "en", ["episode.mp4", "episode.srt", "timeline.otio"]),
    (["ja/episode.mp4", "ja/episode.vtt", "episode.mp4"], "ja", ["episode.mp4", "episode.vtt"]),
])
def test_last_render_is_found_on_disk(tmp_path, files, language, shown):
    out = tmp_path / "renders" / "ep01"
    for name in files:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"x")
    assert [p.name for p in last_render(tmp_path, 1, language)] == shown
    if shown:
        assert last_render(tmp_path, 1, language)[0].parent == out / ("" if language == "en" else language)
