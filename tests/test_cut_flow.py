"""Motion proposals and the cut from accepted canon: real animatic panels, real Piper takes, real render."""
from __future__ import annotations

import json
import subprocess

import pytest

from agent.context import Targets
from agent.cut import episode_spec, last_render, render_cut, render_warnings
from agent.voices import VoiceBackends
from memory.errors import InputError
from memory.project import create_project
from tests.fakes import ScriptedChatModel
from tools.backends.animatic import AnimaticPainter
from tools.render.encode import ffprobe_exe
from ui.session import DirectorSession

pytestmark = pytest.mark.slow
TARGETS = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cut")
    project = create_project(tmp, "Fox Rain")
    s = DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=AnimaticPainter(),
                        voices=VoiceBackends(), candidates=1)
    s.start()
    view = s.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] != "motion":
        view = s.decide({"type": "accept"})
    yield s
    s.close()


def test_motion_proposal_has_a_preview_and_per_shot_settings(made):
    card = made.view().pending
    assert card["kind"] == "motion" and card["data"]["scene_id"] == "scene-ep1-1"
    shots = card["data"]["shots"]
    assert [m["camera_move"] for m in shots] == ["push-in", "static", "pan"]
    assert shots[1]["flash"] is False and shots[1]["transition"] == "crossfade"
    preview = made.project.root / card["data"]["preview"]
    out = subprocess.run([ffprobe_exe(), "-v", "error", "-show_entries", "stream=width,height",
                          "-of", "json", str(preview)], capture_output=True, text=True, check=True)
    assert {"width": 270, "height": 480} in json.loads(out.stdout)["streams"]
    with pytest.raises(InputError, match="no accepted motion"):
        episode_spec(made.canon, made.project.root)


def test_edit_motion_then_the_cut_is_timed_by_the_takes(made):
    card = made.view().pending
    data = card["data"]
    data["shots"][2]["grade"] = "night"
    view = made.decide({"type": "edit", "data": data})
    assert made.canon.get("motion-scene-ep1-1").data["shots"][2]["grade"] == "night"
    assert view.pending["kind"] == "input"
    spec = episode_spec(made.canon, made.project.root)
    take1 = made.canon.get("take-scene-ep1-1-l1-en").data["duration_s"]
    shot2 = spec.shots[1]
    assert shot2.captions[0].text == "Do you hear that?"
    assert shot2.duration == pytest.approx(0.35 + take1 + 0.45 + 0.3, abs=0.01)
    assert spec.shots[0].duration == pytest.approx(2.5 + 0.3) and spec.shots[0].captions == ()
    assert spec.shots[2].grade == "night" and spec.shots[1].speakers == ("character-aiko",)
    assert spec.shots[1].variants and spec.shots[1].layers


def test_the_cut_uses_the_clean_panels_and_shows_each_line_once(made):
    """Default look: no guide layer, no bubble, the clean panel, subtitles burned; bubble mode puts
    the panel's own bubble in and burns nothing where the bubble says the line."""
    spec = episode_spec(made.canon, made.project.root)
    for shot in spec.shots:
        assert not {"guides", "bubble", "overlay"} & set(shot.layers), shot.shot_id
        assert shot.panel.name.endswith(".clean.png") and shot.burn_captions
    bubble = episode_spec(made.canon, made.project.root, captions="bubble")
    for shot in bubble.shots[1:]:                          # one spoken line each, Aiko then Ren
        assert "bubble" in shot.layers and not shot.burn_captions and len(shot.captions) == 1
    assert "bubble" not in bubble.shots[0].layers            # the establishing shot has no line
    kept = episode_spec(made.canon, made.project.root, guides=True)
    assert all("guides" in shot.layers for shot in kept.shots)


def test_render_cut_writes_a_valid_episode(made):
    seen = []
    result = render_cut(made.canon, made.project.root, progress=lambda f, m: seen.append(f))
    assert result.mp4 == made.project.root / "renders" / "ep01" / "episode.mp4"
    out = subprocess.run([ffprobe_exe(), "-v", "error", "-show_entries", "stream=codec_name,width,height",
                          "-of", "json", str(result.mp4)], capture_output=True, text=True, check=True)
    streams = json.loads(out.stdout)["streams"]
    assert {"codec_name": "h264", "width": 1080, "height": 1920} in streams
    assert any(st["codec_name"] == "aac" for st in streams)
    assert seen and seen[-1] == pytest.approx(1.0)
    assert result.srt.read_text().count("-->") == 2
    assert result.warnings == ()
    last = last_render(made.project.root)
    assert last is not None and last["mp4"] == result.mp4 and last["srt"] == result.srt
    assert last_render(made.project.root, language="ja") is None
    assert last_render(made.project.root, episode=2) is None


def test_render_job_runs_in_the_background_and_chat_still_works(made, tmp_path):
    not_audio = tmp_path / "music.mp3"
    not_audio.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(InputError, match="music.mp3"):
        made.render(music=not_audio)
    job = made.render()
    view = made.send("What does Aiko wear?")      # the chat is not blocked by the render
    assert "red scarf" in view.messages[-1]["content"]
    made.jobs.wait(job, 300)
    assert job.state == "done", job.error
    assert job.result.rebuilt_segments == ()        # nothing changed since the last cut: all reused
    strip = made.episode_timeline()
    assert [sid for sid, _, _ in strip] == ["scene-ep1-1-s1", "scene-ep1-1-s2", "scene-ep1-1-s3"]
    assert any(e["action"] == "render" for e in made.ledger.entries())


def test_stale_and_missing_panels_and_takes_are_named_before_a_render(made):
    """Runs last: it revises canon. A changed character makes the panels it appears in stale; a
    changed line makes its take stale; a deleted take is missing and stops the render, by name."""
    root = made.project.root
    assert render_warnings(made.canon, root) == []
    aiko = made.canon.get("character-aiko")
    made.canon.upsert("character", {**aiko.data, "look_tags": [*aiko.data["look_tags"], "white kimono"]},
                      actor="human", record_id=aiko.id, note="new look")
    warnings = render_warnings(made.canon, root)
    assert any(w.startswith("shot scene-ep1-1-s2: panel is stale") for w in warnings), warnings
    assert any(w.startswith("shot scene-ep1-1-s3: panel is stale") for w in warnings), warnings
    assert not any("scene-ep1-1-s1:" in w for w in warnings)      # nobody in the establishing shot
    seen = []
    result = render_cut(made.canon, root, progress=lambda f, m: seen.append(m))
    assert list(result.warnings) == warnings
    assert [m for m in seen if m.startswith("warning: ")] == [f"warning: {w}" for w in warnings]
    made.canon.delete("take-scene-ep1-1-l2-en", actor="human", note="drop")
    with pytest.raises(InputError, match="scene-ep1-1-l2 \\(Ren\\) has no accepted en take"):
        render_cut(made.canon, root)
    assert last_render(root) is not None                          # the last good cut is still there
