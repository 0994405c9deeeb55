"""The `render` tool: refuses, naming them, what the episode still needs; starts the render through
the run context's renderer (the studio's background job) when there is one; renders at once
otherwise (slow: a real preview with the animatic painter and Piper takes)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.tools import ToolContext, call
from memory.canon import Canon
from memory.ledger import Ledger
from memory.project import Project
from tests.router_table import build_fixture


class FakeRenderer:
    def __init__(self) -> None:
        self.started: list[tuple[int, bool]] = []

    def start(self, episode: int, *, preview: bool) -> str:
        self.started.append((episode, preview))
        return f"Rendering episode {episode} in the background (job j1)."


def _ctx(tmp_path: Path, *, files: bool, renderer: object | None = None) -> SimpleNamespace:
    root = tmp_path / "p"
    root.mkdir()
    canon = Canon(root / "canon.sqlite")
    build_fixture(canon)
    for shot in canon.list("shot"):
        canon.upsert("panel", {"kind": "panel", "subject": shot.id, "path": f"assets/panels/{shot.id}.png"},
                     actor="human", record_id=f"panel-{shot.id}")
    if files:
        for rec in [*canon.list("panel"), *canon.list("take")]:
            path = root / rec.data["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
    return SimpleNamespace(canon=canon, ledger=Ledger(root / "ledger.jsonl"), project_root=root,
                           project=Project(root=root, name="p"), painter=None, renderer=renderer)


@pytest.mark.parametrize(("preview", "named"), [
    (False, ["panel file assets/panels/scene-ep1-1-s1.png is missing", "take file assets/audio/scene-ep1-2-l1.wav",
             "I cannot render episode 1 yet"]),
    (True, ["I cannot render a preview of episode 1 yet", "scene-ep1-2-s2.png is missing", "(and 5 more)"]),
])
def test_render_refuses_naming_what_is_missing(tmp_path, preview, named):
    renderer = FakeRenderer()
    ctx = _ctx(tmp_path, files=False, renderer=renderer)
    out = call("render", {"episode": 1, "preview": preview}).run(ToolContext(ctx=ctx, state={}))  # type: ignore[arg-type]
    for words in named:
        assert words in out.say
    assert renderer.started == [] and ctx.ledger.entries() == []
    assert not (ctx.project_root / "renders").exists()


def test_render_without_motion_is_refused_but_a_preview_starts(tmp_path):
    renderer = FakeRenderer()
    ctx = _ctx(tmp_path, files=True, renderer=renderer)
    motion = ctx.canon.get("motion-scene-ep1-2")
    ctx.canon.delete(motion.id, actor="human")
    tc = ToolContext(ctx=ctx, state={})  # type: ignore[arg-type]
    out = call("render", {"episode": 1}).run(tc)
    assert "scene scene-ep1-2 has no accepted motion yet" in out.say and renderer.started == []
    out = call("render", {"episode": 1, "preview": True}).run(tc)
    assert out.say == "Rendering episode 1 in the background (job j1)." and renderer.started == [(1, True)]


def test_render_starts_through_the_renderer(tmp_path):
    renderer = FakeRenderer()
    ctx = _ctx(tmp_path, files=True, renderer=renderer)
    out = call("render", {"episode": 1}).run(ToolContext(ctx=ctx, state={}))  # type: ignore[arg-type]
    assert renderer.started == [(1, False)] and "job j1" in out.say
    assert not out.tasks and out.prepared is None


def test_render_of_an_episode_without_scenes_is_refused(tmp_path):
    ctx = _ctx(tmp_path, files=True, renderer=FakeRenderer())
    out = call("render", {"episode": 2}).run(ToolContext(ctx=ctx, state={}))  # type: ignore[arg-type]
    assert "episode 2 has no scenes yet" in out.say


@pytest.mark.slow
def test_render_preview_from_the_chat_renders_at_once(tmp_path):
    from agent.context import Targets
    from agent.voices import VoiceBackends
    from memory.project import create_project
    from tests.fakes import ScriptedChatModel
    from tools.backends.animatic import AnimaticPainter
    from ui.session import DirectorSession

    project = create_project(tmp_path, "Fox Rain")
    s = DirectorSession(project, ScriptedChatModel(), painter=AnimaticPainter(), voices=VoiceBackends(), candidates=1,
                        targets=Targets(characters=2, locations=1, props=0, episodes=1, scenes=1))
    try:
        s.start()
        view = s.send("A shrine maiden hears rain spirits.")
        while view.pending["kind"] != "motion":
            view = s.decide({"type": "accept"})
        if getattr(s.context, "renderer", None) is not None:
            s.context.renderer = None   # this test checks the render done in the chat step itself
        view = s.send("render a preview of episode 1")
        said = view.messages[-1]["content"]
        assert "Rendered a preview of episode 1: renders/ep01/preview/episode.mp4" in said, said
        assert (project.root / "renders" / "ep01" / "preview" / "episode.mp4").stat().st_size > 1000
        assert view.pending["kind"] == "motion"   # the card waits as it was
    finally:
        s.close()


def _studio_project(tmp_path: Path) -> Project:
    """The fixture project on disk with a real (tiny) picture per panel and a real take per line."""
    import math
    import struct
    import wave

    from PIL import Image

    from memory.project import create_project

    project = create_project(tmp_path, "Fox Rain")
    canon = Canon(project.root / "canon.sqlite")
    try:
        build_fixture(canon)
        for i, shot in enumerate(canon.list("shot")):
            rel = f"assets/panels/{shot.id}/v1.png"
            (project.root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (108, 192), (40 + 20 * i, 60, 120)).save(project.root / rel)
            canon.upsert("panel", {"kind": "panel", "subject": shot.id, "path": rel, "source": "upload"},
                         actor="human", record_id=f"panel-{shot.id}")
        for take in canon.list("take"):
            path = project.root / take.data["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(22050)
                w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * n / 22050)))
                                       for n in range(11025)))
            canon.revise(take.id, {**take.data, "duration_s": 0.5}, actor="human")
    finally:
        canon.close()
    return project


@pytest.mark.parametrize(("text", "where", "slow"), [
    ("render a preview of episode 1", "renders/ep01/preview", False),
    pytest.param("render episode 1", "renders/ep01", True, marks=pytest.mark.slow),
])
def test_the_studio_chat_renders_as_a_background_job(tmp_path, text, where, slow):
    """In a session the `render` tool starts the session's render job (the one the Episode tab
    follows): the chat answers at once, naming the job; the job finishes; the files are there."""
    import time

    from tests.fakes import ScriptedChatModel
    from ui.session import DirectorSession, JobRenderer

    project = _studio_project(tmp_path)
    with DirectorSession(project, ScriptedChatModel()) as s:
        assert isinstance(s.context.renderer, JobRenderer)
        s.start()
        card = s.send("A shrine maiden hears rain spirits.").pending   # the premise; canon is complete
        view = s.send(text)
        answered = time.time()
        job = s.jobs.latest("render")
        assert job is not None, view.messages[-1]["content"]
        said = view.messages[-1]["content"]
        assert f"in the background (job {job.id}) into {where}/" in said, said
        assert job.finished is None or job.finished >= answered     # the chat did not wait for it
        assert (view.pending or {}).get("proposal_id") == (card or {}).get("proposal_id")   # the card stays
        s.jobs.wait(job, timeout=300)
        assert job.state == "done", job.error
        for name in ("episode.mp4", "episode.srt", "episode.vtt"):
            assert (project.root / where / name).stat().st_size > 0
        assert Path(job.result.mp4) == project.root / where / "episode.mp4"
        renders = [e for e in s.ledger.entries() if e["action"] == "render"]
        assert [e["record_id"] for e in renders] == ["episode-1"]
        # a second request while it runs is refused, naming it, not queued behind the chat
        if not slow:
            s.jobs.submit("render", lambda progress: time.sleep(1))
            said = s.send(text).messages[-1]["content"]
            assert "a render job is already running" in said, said
