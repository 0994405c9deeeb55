"""Motion proposals and the cut from accepted canon: real animatic panels, real Piper takes, real render."""
from __future__ import annotations

import json
import subprocess

import pytest

from agent.context import Targets
from agent.cut import episode_spec, render_cut
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
