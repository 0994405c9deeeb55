"""Takes as jobs and batch drafting per episode (issue 13, points 1 and 2).

Real canon/bible/ledger/checkpointer and a real `InProcessJobRunner` (jobs in state/jobs.sqlite);
fakes only at the Protocol boundaries: a voice synth that writes a short tone (and can wait or fail
like a real engine), the animatic painter behind the slow painter of test_jobs_session.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agent.context import Targets
from memory.errors import BackendError
from memory.project import create_project
from tests.fakes import ScriptedChatModel
from tests.test_jobs_session import SlowPainter, drafting, wait_for
from tools.backends.protocols import SpeechRequest
from tools.jobs import Registry
from tools.jobs.inprocess import InProcessJobRunner
from tools.jobs.roles import painter_role_for, tts_role_for
from ui.cards import card_markdown
from ui.session import DirectorSession

TARGETS = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)
WRITERS_ROOM = ("vision", "series", "character", "location", "outline", "beats", "scene", "facts")


class ToneSynth:
    """A VoiceSynth writing 0.4 s of a tone at 22.05 kHz; `gate` holds it, `fail` makes the next N
    takes raise what a lost engine would."""

    name = "tone"

    def __init__(self, gate: threading.Event | None = None, fail: int = 0) -> None:
        self.gate, self.fail, self.calls = gate, fail, []

    def synthesize(self, request: SpeechRequest, out: Path) -> Path:
        if out.name.startswith("audition"):       # a casting's audition (in the step) is never held
            return self._tone(out)
        self.calls.append(request.text)
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the synth's gate"
        if self.fail:
            self.fail -= 1
            raise BackendError("piper crashed: the voice model file is truncated; reinstall the voice")
        return self._tone(out)

    @staticmethod
    def _tone(out: Path) -> Path:
        t = np.arange(int(22050 * 0.4)) / 22050
        sf.write(out, 0.3 * np.sin(2 * np.pi * 220 * t), 22050)
        return out


class ToneVoices:
    """The session's voices (`VoiceBackends`' shape): one synth for every profile, no ear check."""

    def __init__(self, synth: ToneSynth) -> None:
        self.synth, self.checker, self.checks = synth, None, None

    def synth_for(self, profile):
        return self.synth


@pytest.fixture
def project(tmp_path):
    return create_project(tmp_path, "Fox Rain")


def voice_session(project, synth: ToneSynth) -> DirectorSession:
    voices = ToneVoices(synth)
    runner = InProcessJobRunner(project, Registry([tts_role_for(voices)]))
    return DirectorSession(project, ScriptedChatModel(), targets=TARGETS, voices=voices, job_runner=runner)


def to_first_take(s: DirectorSession):
    s.start()
    view = s.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] in (*WRITERS_ROOM, "casting"):
        view = s.decide({"type": "accept"})
    assert view.pending["kind"] == "take", view.pending
    return view


def test_a_take_is_voiced_as_a_job_then_accepted(project):
    gate = threading.Event()
    synth = ToneSynth(gate=gate)
    with voice_session(project, synth) as s:
        view = to_first_take(s)
        card = view.pending
        live = drafting(view)
        assert card["data"]["candidates"] == [] and len(live["jobs"]) == 1
        text = card_markdown(card)
        assert "voicing line 1 of scene 1 (" in text and "· 0/1 ·" in text and "Cancel" in text
        # the synth is held: a question is answered meanwhile, accepting is refused on the card
        view = s.send("What does Aiko wear?")
        assert "red scarf" in view.messages[-1]["content"] and drafting(view)
        view = s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        assert "still being voiced" in view.pending["error"] and s.canon.list("take") == []
        gate.set()
        view = wait_for(s, lambda v: not drafting(v))
        cand = view.pending["data"]["candidates"][0]
        assert view.pending["proposal_id"] == card["proposal_id"]
        assert cand["path"].startswith("assets/jobs/tts/") and cand["duration_s"] == pytest.approx(0.4, abs=0.02)
        data, rate = sf.read(project.root / cand["path"])
        assert rate == 48000 and data.ndim == 1
        line_id = card["data"]["subject"]
        s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        take = s.canon.get(f"take-{line_id}-en")
        assert take.data["path"].startswith("assets/audio/") and take.data["source"] == "generated"
        assert (project.root / take.data["path"]).read_bytes() == (project.root / cand["path"]).read_bytes()
        assert synth.calls[0] == card["data"]["text"]           # voiced once; the next take is drafting
        wait_for(s, lambda v: (v.pending.get("data") or {}).get("subject") not in (None, line_id))


def test_a_take_job_matches_the_take_made_in_the_step(project, tmp_path):
    """Same text, seed and voice as voicing inside the step: the job is a drop-in."""
    with voice_session(project, ToneSynth()) as s:
        to_first_take(s)
        job_card = wait_for(s, lambda v: not drafting(v)).pending["data"]
    other = create_project(tmp_path / "b", "Fox Rain")
    synth = ToneSynth()
    with DirectorSession(other, ScriptedChatModel(), targets=TARGETS, voices=ToneVoices(synth)) as s:
        inline = to_first_take(s).pending["data"]
    keep = ("subject", "language", "speaker", "text", "spoken_text", "engine", "voice", "made_from", "lipsync")
    assert {k: job_card[k] for k in keep} == {k: inline[k] for k in keep}
    assert job_card["candidates"][0]["duration_s"] == inline["candidates"][0]["duration_s"]


def test_a_failing_voice_shows_its_reason_and_retry_voices_it(project):
    synth = ToneSynth(fail=1)
    with voice_session(project, synth) as s:
        card = to_first_take(s).pending
        view = wait_for(s, lambda v: bool(v.pending.get("failure")))
        assert "voice model file is truncated" in view.pending["failure"]
        assert "**Retry**" in card_markdown(view.pending)
        s.retry()
        view = wait_for(s, lambda v: not drafting(v) and not v.pending.get("failure"))
        assert view.pending["proposal_id"] == card["proposal_id"] and view.pending["data"]["candidates"]
        assert s.canon.list("take") == []            # nothing accepted was touched
        assert synth.calls[:2] == [card["data"]["text"]] * 2


def test_cancel_a_take_job_then_redo(project):
    gate = threading.Event()
    with voice_session(project, ToneSynth(gate=gate)) as s:
        card = to_first_take(s).pending
        view = s.cancel_drafting(card["proposal_id"])
        gate.set()
        view = wait_for(s, lambda v: bool(v.pending.get("failure")))
        assert "cancelled" in view.pending["failure"]
        view = s.decide({"type": "redo", "proposal_id": card["proposal_id"]})
        assert view.pending["proposal_id"] != card["proposal_id"]
        view = wait_for(s, lambda v: not drafting(v) and not v.pending.get("failure"))
        assert view.pending["kind"] == "take" and view.pending["data"]["candidates"]


# --------------------------------------------------------------------------- batch drafting


def panel_session(project, painter) -> DirectorSession:
    runner = InProcessJobRunner(project, Registry([painter_role_for(painter)]))
    return DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter, candidates=2,
                           job_runner=runner)


def accept_until_panel(s: DirectorSession):
    """Accept every card (waiting for pictures drafted as jobs) until the first panel card."""
    s.start()
    view = s.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] != "panel":
        if drafting(view):
            view = wait_for(s, lambda v: not drafting(v))
            continue
        view = s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
    return view


def test_a_batch_queues_each_missing_panel_once_and_the_cards_arrive_in_shot_order(project):
    gate = threading.Event()
    painter = SlowPainter()
    with panel_session(project, painter) as s:
        first = accept_until_panel(s).pending
        shots = [sh["shot"].id for e in s.storyboard(1) for sh in e["shots"]]
        assert len(shots) == 3 and first["data"]["subject"] == shots[0]
        wait_for(s, lambda v: not drafting(v))            # shot 1's candidates are ready on the card
        painter.gate = gate                                # from now on the painter waits for the test
        calls = painter.calls
        view = s.send("draft all panels for episode 1")
        said = view.messages[-1]["content"]
        assert "Queued 4 jobs for 3 panels of episode 1; 2 already queued or drawn" in said, said
        assert view.pending["proposal_id"] == first["proposal_id"]          # the card is still the one on screen
        board = {sh["shot"].id: sh["job"] for e in s.storyboard(1) for sh in e["shots"]}
        assert board[shots[0]]["words"] == "ready for review"
        assert {board[shots[1]]["state"], board[shots[2]]["state"]} <= {"queued", "running"}
        panel_jobs = lambda: [j for j in s.job_runner.jobs() if j.label.startswith("panel candidates")]
        before = len(s.job_runner.jobs())
        assert "Queued 0 jobs" in s.draft_all("panels", 1)                # a second request adds none
        assert len(s.job_runner.jobs()) == before and len(panel_jobs()) == 6
        gate.set()
        seen = [first["data"]["subject"]]
        view = s.decide({"type": "accept", "choice": 0, "proposal_id": first["proposal_id"]})
        while view.pending["kind"] == "panel":
            card = view.pending
            t0 = time.monotonic()
            view = wait_for(s, lambda v: not drafting(v))
            assert time.monotonic() - t0 < 10
            seen.append(view.pending["data"]["subject"])
            assert len(view.pending["data"]["jobs"]) == 2
            view = s.decide({"type": "accept", "choice": 0, "proposal_id": card["proposal_id"]})
        assert seen == shots                                # in shot order, each card from the batch's jobs
        assert len(panel_jobs()) == 6 and painter.calls == calls + 4   # nothing was drawn twice
        assert all(s.canon.live(f"panel-{sh}") for sh in shots)


def test_voice_all_lines_queues_each_missing_take_once(project):
    gate = threading.Event()
    synth = ToneSynth(gate=gate)
    with voice_session(project, synth) as s:
        card = to_first_take(s).pending
        lines = [ln for sc in s.canon.list("scene") for ln in sc.data["lines"]]
        view = s.send("voice all lines of episode 1")
        said = view.messages[-1]["content"]
        assert f"Queued {len(lines) - 1} jobs for {len(lines)} takes of episode 1; 1 already queued" in said, said
        assert view.pending["proposal_id"] == card["proposal_id"]
        assert "Queued 0 jobs" in s.draft_all("takes", 1)
        assert len([j for j in s.job_runner.jobs() if j.role == "tts"]) == len(lines)
        rows = {r["item"]: r for r in s.batch_jobs(1) if r["what"] == "take"}   # the storyboard's job table
        assert set(rows) == {ln["id"] for ln in lines}
        assert {r["words"] for r in rows.values()} <= {"queued", "running"}
        with pytest.raises(Exception, match="needs the job runner"):   # no "preview" role in this runner
            s.draft_all("clips", 1)
        gate.set()
        s.job_runner.wait(s.job_runner.jobs()[-1].job_id, timeout=30)
        view = wait_for(s, lambda v: not drafting(v))
        s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
        view = wait_for(s, lambda v: v.pending["kind"] == "take" and not drafting(v), timeout=10)
        assert view.pending["data"]["subject"] == lines[1]["id"]          # the next line, its job done already
        assert len(synth.calls) == len(lines)                             # nothing voiced twice


def test_batch_words_and_refusals(project):
    from agent.tools import ToolError
    from agent.tools.batch import router_arguments

    assert router_arguments("draft all panels for episode 1") == {"what": "panels", "episode": 1}
    assert router_arguments("voice all lines of ep 2") == {"what": "takes", "episode": 2}
    assert router_arguments("animate every clip of the second episode") == {"what": "clips", "episode": 2}
    assert router_arguments("batch draw the whole storyboard") == {"what": "panels", "episode": None}
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=SlowPainter()) as s:
        s.start()
        with pytest.raises(ToolError, match="needs the job runner"):
            s.draft_all("panels", 1)
        with pytest.raises(ToolError, match="episode 4 is not started"):
            s.draft_all("panels", 4)


# --------------------------------------------------------------------------- motion clips as jobs


class FrameAnimator:
    """An image-to-video backend writing `num_frames` small PNG frames (the Protocol's shape)."""

    name = "frames"

    def __init__(self) -> None:
        self.calls = 0

    def animate(self, panel: Path, prompt: str, num_frames: int, fps: int, seed: int, out_dir: Path) -> list[Path]:
        from PIL import Image

        self.calls += 1
        folder = Path(out_dir) / f"{Path(panel).stem}-{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        frames = []
        for i in range(num_frames):
            frames.append(folder / f"frame-{i:03d}.png")
            Image.new("RGB", (54, 96), (20 * i, 40, 90)).save(frames[-1])
        return frames


def test_make_waits_for_takes_and_clips_drawn_as_jobs(project):
    """`storyreel make` (decide_all) through one runner with painter, tts, i2v and preview roles: every
    take, every shot's clip and then the scene's preview is a job it waits for (the motion card drafts
    in two stages); the cards it accepts carry the jobs' files."""
    from tools.jobs.roles import i2v_role_for, preview_role
    from ui.headless import decide_all

    painter, synth, animator = SlowPainter(), ToneSynth(), FrameAnimator()
    voices = ToneVoices(synth)
    runner = InProcessJobRunner(project, Registry([painter_role_for(painter), tts_role_for(voices),
                                                   i2v_role_for(animator), preview_role()]))
    said: list[str] = []
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter, candidates=1,
                         voices=voices, animator=animator, job_runner=runner, actor="auto") as s:
        s.context.clip_frames = 3
        s.start()
        view = decide_all(s, s.send("A shrine maiden hears rain spirits."), said.append)
        assert not view.awaiting_decision
        takes, lines = s.canon.list("take"), [ln for sc in s.canon.list("scene") for ln in sc.data["lines"]]
        assert len(takes) == len(lines) == len(synth.calls) and all(t.data["source"] == "generated" for t in takes)
        assert sum("waiting for 1 jobs (line " in x for x in said) == len(lines)
        assert any("waiting for 3 jobs (shots 1–3 of scene 1)" in x for x in said), said
        motion = s.canon.get("motion-scene-ep1-1")
        assert all(len(m["clip"]) == 3 and m["clip"][0].startswith("assets/jobs/i2v/") for m in motion.data["shots"])
        assert animator.calls == 3 and (project.root / motion.data["preview"]).is_file()
        assert motion.data["preview"].startswith("assets/jobs/preview/")     # the second stage, waited for too


def test_a_motion_card_animating_says_so_and_refuses_accept():
    from agent.kinds.motion import motion_card

    live = {"verb": "animating", "label": "shots 1–3 of scene 1", "jobs": ["a", "b", "c"], "done": 1, "total": 3,
            "elapsed_s": 40.2, "status": [{"n": 1, "state": "done"}, {"n": 2, "state": "failed", "error": "CUDA out of memory"},
                                         {"n": 3, "state": "running", "message": "step 2/4"}], "failed": False}
    text = motion_card({"scene_id": "scene-ep1-1", "shots": [], "drafting": live})
    assert "animating shots 1–3 of scene 1 · 1/3 · 40 s" in text
    assert "shot #2 failed: CUDA out of memory" in text and "shot #3 running · step 2/4" in text
    assert "**Retry**" in motion_card({"scene_id": "x", "drafting": {**live, "failed": True}})


@pytest.mark.parametrize(("states", "words"), [
    (("queued", "queued"), "queued"),
    (("done", "running"), "running"),
    (("done", "done"), "ready for review"),
    (("done", "failed"), "failed: CUDA out of memory"),
    (("cancelled", "done"), "cancelled"),
    ((None, "queued"), "queued"),
    ((None, None), None),
])
def test_the_storyboard_words_for_an_items_jobs(monkeypatch, states, words):
    """What the Storyboard tab says per shot, from its first card's jobs (looked up by key)."""
    from agent.tools import batch
    from tools.jobs import JobSpec, JobStatus

    specs = [JobSpec("painter", {"n": i}) for i in range(2)]
    found = {sp.key: JobStatus(job_id=str(i), key=sp.key, role="painter", label="", state=st, progress=0.0,
                               message="", elapsed_s=0.0, attempts=1,
                               error="CUDA out of memory" if st == "failed" else None)
             for i, (sp, st) in enumerate(zip(specs, states, strict=True)) if st is not None}

    class Runner:
        def find(self, key):
            return found.get(key)

    monkeypatch.setattr(batch, "_items", lambda ctx, what, episode: [("scene-ep1-1-s1", specs)])
    ctx = type("Ctx", (), {"job_runner": Runner()})()
    got = batch.item_jobs(ctx, "panels", 1).get("scene-ep1-1-s1")
    assert (got or {}).get("words") == words


# --------------------------------------------------------------------------- motion previews (cpu lane) and batch clips


class GatedPreview:
    """The real preview work (ffmpeg) behind a gate, and failing the next `fail` renders as a lost
    ffmpeg would: the "preview" role at the Protocol boundary."""

    def __init__(self, gate: threading.Event | None = None, fail: int = 0) -> None:
        self.gate, self.fail, self.calls = gate, fail, 0

    def work(self, payload, ctx):
        from tools.jobs.roles import render_preview_job

        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the preview's gate"
        ctx.progress(0.0, "rendering")
        if self.fail:
            self.fail -= 1
            raise BackendError("ffmpeg was killed (out of memory) while rendering the preview; press Retry")
        return render_preview_job(payload, ctx)

    def role(self):
        import functools

        from tools.jobs import Role

        return Role("preview", functools.partial(lambda w: w, self.work), lane="cpu")


def motion_session(project, preview: GatedPreview, animator=None) -> DirectorSession:
    from tools.jobs.roles import i2v_role_for

    painter, voices = SlowPainter(), ToneVoices(ToneSynth())
    roles = [painter_role_for(painter), tts_role_for(voices), preview.role()]
    if animator is not None:
        roles.append(i2v_role_for(animator))
    s = DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter, candidates=1, voices=voices,
                        animator=animator, job_runner=InProcessJobRunner(project, Registry(roles)))
    s.context.clip_frames = 2
    return s


def accept_until(s: DirectorSession, kinds: tuple[str, ...], view=None):
    """Accept every card (waiting for what is drafted as jobs) until one of `kinds` is on screen."""
    if view is None:
        s.start()
        view = s.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] not in kinds:
        if drafting(view):
            view = wait_for(s, lambda v: not drafting(v) or v.pending["kind"] in kinds)
            continue
        view = s.decide({"type": "accept", "choice": 0, "proposal_id": view.pending["proposal_id"]})
    return view


def test_a_motion_preview_is_rendered_as_a_cpu_job_then_accepted(project):
    from agent import cut
    from agent.kinds.motion import preview_job
    from tools.jobs import WorkContext
    from tools.jobs.roles import preview_episode

    gate = threading.Event()
    preview = GatedPreview(gate=gate)
    with motion_session(project, preview) as s:
        try:
            view = accept_until(s, ("motion",))
            card = view.pending
            live = drafting(view)
            assert live["stage"] == "preview" and live["label"] == "the motion preview of scene 1", live
            assert not card["data"].get("preview") and len(card["data"]["shots"]) == 3
            job = s.job_runner.status(live["jobs"][0])
            assert job.role == "preview" and s.job_runner.registry.get("preview").lane == "cpu"
            text = card_markdown(card)
            assert "rendering the motion preview of scene 1 · 0/1 ·" in text and "Cancel" in text, text
            view = s.send("What does Aiko wear?")                 # the chat answers while it renders
            assert "red scarf" in view.messages[-1]["content"] and drafting(view)
            view = s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
            assert "preview is still being rendered" in view.pending["error"]
            assert not s.canon.live("motion-scene-ep1-1")
            # the job's spec: the card's motion, every file and field of the in-step preview's spec
            ctx, motion = s.context, cut.propose_motion(s.canon, "scene-ep1-1", [])
            spec = preview_job(ctx, "scene-ep1-1", motion)
            assert spec.key == job.key and spec.inputs and all(not p.startswith("/") for p in spec.inputs)
            inputs = {rel: project.root / rel for rel in spec.inputs}
            work = WorkContext(job_id="t", attempt=1, inputs=inputs, report=lambda f, m: None,
                               cancelled=lambda: False)
            assert preview_episode(dict(spec.payload), work) == cut.preview_spec(ctx, "scene-ep1-1", motion)
            pushed = {**motion, "shots": [{**motion["shots"][0], "camera_move": "pan"}, *motion["shots"][1:]]}
            assert preview_job(ctx, "scene-ep1-1", pushed).key != job.key
        finally:
            gate.set()
        view = wait_for(s, lambda v: not drafting(v))
        data = view.pending["data"]
        assert view.pending["proposal_id"] == card["proposal_id"] and not view.pending.get("failure")
        assert data["preview"].startswith("assets/jobs/preview/") and data["jobs"] == live["jobs"]
        mp4 = (project.root / data["preview"]).read_bytes()
        assert mp4[4:8] == b"ftyp" and "The low-res preview plays below." in card_markdown(view.pending)
        s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        motion = s.canon.get("motion-scene-ep1-1")
        assert motion.data["preview"] == data["preview"] and preview.calls == 1


def test_a_failing_preview_shows_its_reason_retry_renders_it_and_cancel_stops_it(project):
    preview = GatedPreview(fail=1)
    with motion_session(project, preview) as s:
        card = accept_until(s, ("motion",)).pending
        view = wait_for(s, lambda v: bool(v.pending.get("failure")))
        assert "ffmpeg was killed (out of memory)" in view.pending["failure"]
        text = card_markdown(view.pending)
        assert "The preview failed: **Retry** renders it again" in text and "preview failed: ffmpeg" in text, text
        s.retry()
        view = wait_for(s, lambda v: not drafting(v) and not v.pending.get("failure"))
        assert view.pending["proposal_id"] == card["proposal_id"] and view.pending["data"]["preview"]
        assert preview.calls == 2 and not s.canon.live("motion-scene-ep1-1")      # nothing accepted was touched
        # a note asks for another motion: its preview is a new job, held, then cancelled on the card
        preview.gate = threading.Event()
        try:
            view = s.decide({"type": "reject", "note": "make it a cold night", "proposal_id": card["proposal_id"]})
            view = wait_for(s, lambda v: v.pending["proposal_id"] != card["proposal_id"] and bool(drafting(v)))
            again = view.pending
            assert all(m["grade"] == "night" for m in again["data"]["shots"])
            s.cancel_drafting(again["proposal_id"])
        finally:
            preview.gate.set()
        view = wait_for(s, lambda v: bool(v.pending.get("failure")))
        assert "cancelled" in view.pending["failure"] and "**Redo**" in card_markdown(view.pending)
        assert not s.canon.live("motion-scene-ep1-1")


def test_batch_clips_queue_each_scenes_jobs_once_with_the_cards_keys(project):
    """"animate all clips of episode 1" before the takes: the clip jobs (the preview waits for the
    takes); the motion card then finds them, and its preview job is the one the batch would queue."""
    from agent.tools.batch import clip_items, motion_state

    animator = FrameAnimator()
    with motion_session(project, GatedPreview(), animator=animator) as s:
        view = accept_until(s, ("take",))
        assert s.canon.live("panel-scene-ep1-1-s1") and not s.canon.list("take")
        view = s.send("animate all clips of episode 1")
        said = view.messages[-1]["content"]
        assert "Queued 3 jobs for the motion of 1 scene of episode 1." in said, said
        assert "preview is queued once its takes are accepted" in said
        assert "Queued 0 jobs" in s.draft_all("clips", 1) and animator.calls <= 3
        batch = {j.key for j in s.job_runner.jobs() if j.role == "i2v"}
        assert len(batch) == 3
        view = accept_until(s, ("motion",), view)
        card = view.pending
        if drafting(view) and drafting(view).get("stage") == "clips":
            assert {s.job_runner.status(j).key for j in drafting(view)["jobs"]} == batch
            view = wait_for(s, lambda v: (drafting(v) or {}).get("stage") != "clips")
        live = drafting(view)
        assert live and live["stage"] == "preview" and view.pending["proposal_id"] == card["proposal_id"]
        assert {s.job_runner.status(j).key for j in live["clip_jobs"]} == batch     # the card took the batch's clips
        (scene, specs), = clip_items(s.context, 1)
        assert scene == "scene-ep1-1" and [sp.role for sp in specs] == ["i2v"] * 3 + ["preview"]
        assert {sp.key for sp in specs[:3]} == batch and specs[3].key == s.job_runner.status(live["jobs"][0]).key
        assert "Queued 0 jobs for the motion of 1 scene of episode 1; 4 already queued" in s.draft_all("clips", 1)
        view = wait_for(s, lambda v: not drafting(v))
        assert animator.calls == 3 and all(len(m["clip"]) == 2 for m in view.pending["data"]["shots"])
        s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        assert motion_state(s.canon, "scene-ep1-1") == "accepted" and clip_items(s.context, 1) == []
        assert "nothing to queue" in s.draft_all("clips", 1)
        assert len([j for j in s.job_runner.jobs() if j.role in ("i2v", "preview")]) == 4
