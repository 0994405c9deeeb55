"""Pictures drafted as jobs (issue 13): the session with a job runner and a slow fake painter.

Real canon/bible/ledger/checkpointer and a real `InProcessJobRunner` (jobs in state/jobs.sqlite);
the painter is the animatic renderer behind a fake that sleeps or fails (the Protocol boundary).
"""
from __future__ import annotations

import threading
import time

import pytest

from agent.context import Targets
from agent.review import check_decision
from memory.errors import BackendError, InputError
from memory.project import create_project, open_project
from tests.fakes import ScriptedChatModel
from tools.backends.animatic import AnimaticPainter
from tools.jobs import Registry
from tools.jobs.inprocess import InProcessJobRunner
from tools.jobs.roles import painter_role_for
from ui.cards import card_markdown
from ui.session import DirectorSession

TARGETS = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)
WRITERS_ROOM = ("vision", "series", "character", "location", "outline", "beats", "scene", "facts")


class SlowPainter:
    """The animatic painter after a pause; `gate` (when set) holds every paint until it opens, and
    `fail` makes the next N paints raise what a GPU would ("out of memory")."""

    name = "animatic"

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None, fail: int = 0) -> None:
        self.inner, self.delay, self.gate, self.fail = AnimaticPainter(), delay, gate, fail
        self.calls = 0

    def paint(self, request, out_dir):
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the painter's gate"
        time.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise BackendError("CUDA out of memory while painting; lower [painter] candidates")
        return self.inner.paint(request, out_dir)


def open_session(project, painter, **kw) -> DirectorSession:
    runner = InProcessJobRunner(project, Registry([painter_role_for(painter)]))
    return DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter, candidates=2,
                           job_runner=runner, **kw)


def to_first_picture(s: DirectorSession):
    s.start()
    view = s.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] in WRITERS_ROOM:
        view = s.decide({"type": "accept"})
    return view


def wait_for(s: DirectorSession, ok, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = s.view()
        if view.pending is not None and ok(view):     # None: a run in flight, between two steps
            return view
        time.sleep(0.05)
    raise AssertionError(f"timed out; the card is {s.view().pending}")


def drafting(view):
    """The card's drafting entry; True while a run is in flight (no card saved between two steps)."""
    if view.pending is None:
        return True
    return (view.pending.get("data") or {}).get("drafting")


@pytest.fixture
def project(tmp_path):
    return create_project(tmp_path, "Fox Rain")


def test_a_drafting_card_answers_questions_then_turns_into_its_candidates(project):
    gate = threading.Event()
    painter = SlowPainter(gate=gate)
    with open_session(project, painter) as s:
        view = to_first_picture(s)
        card = view.pending
        assert card["kind"] == "reference" and card["data"]["candidates"] == []
        live = drafting(view)
        assert live["label"] == "reference sheet candidates for Aiko" and len(live["jobs"]) == 2
        assert (live["done"], live["total"]) == (0, 2)
        text = card_markdown(card)
        assert "drafting reference sheet candidates for Aiko · 0/2" in text and "#1 running" in text
        # the painter is still held: a question gets its answer at once, the card stays drafting
        t0 = time.perf_counter()
        view = s.send("What does Aiko wear?")
        assert time.perf_counter() - t0 < 5
        assert "red scarf" in view.messages[-1]["content"]
        assert view.pending["proposal_id"] == card["proposal_id"] and drafting(view)
        # accepting a drafting card is refused on the card; nothing is written
        view = s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        assert "still being drawn" in view.pending["error"] and s.canon.live("ref-character-aiko") is None
        gate.set()
        view = wait_for(s, lambda v: not drafting(v))
        cands = view.pending["data"]["candidates"]
        assert view.pending["proposal_id"] == card["proposal_id"] and len(cands) == 2
        assert [c["seed"] for c in cands] == live["seeds"]
        assert all(c["path"].startswith("assets/jobs/painter/") and (project.root / c["path"]).is_file()
                   for c in cands)
        s.decide({"type": "accept", "choice": 1, "proposal_id": card["proposal_id"]})
        ref = s.canon.get("ref-character-aiko")
        assert ref.data["seed"] == cands[1]["seed"] and ref.data["path"].startswith("assets/panels/")
        propose = [e for e in s.ledger.entries() if e["action"] == "propose" and e["record_id"] == "character-aiko"]
        assert propose[-1]["note"] == "drafting 2 candidates as jobs"
        assert drafting(s.view())                    # the next picture is drafting already
        gate.set()


def test_the_same_seeds_as_painting_in_the_step(project, tmp_path):
    """A job draws what the graph step would have drawn (same request, same seeds)."""
    with open_session(project, SlowPainter()) as s:
        to_first_picture(s)
        jobs = wait_for(s, lambda v: not drafting(v)).pending["data"]["candidates"]
    other = create_project(tmp_path / "b", "Fox Rain")
    with DirectorSession(other, ScriptedChatModel(), targets=TARGETS, painter=AnimaticPainter(), candidates=2) as s:
        inline = to_first_picture(s).pending["data"]["candidates"]
    assert [c["seed"] for c in jobs] == [c["seed"] for c in inline]
    assert [(project.root / c["path"]).read_bytes() for c in jobs] == \
        [(other.root / c["path"]).read_bytes() for c in inline]


def test_cancel_stops_the_cards_jobs_then_redo_or_skip(project):
    gate = threading.Event()
    with open_session(project, SlowPainter(gate=gate)) as s:
        card = to_first_picture(s).pending
        view = s.cancel_drafting(card["proposal_id"])
        gate.set()
        view = wait_for(s, lambda v: v.pending.get("failure"))
        assert "cancelled" in view.pending["failure"] and drafting(view)["cancelled"]
        assert {st["state"] for st in drafting(view)["status"]} == {"cancelled"}
        assert "Redo" in card_markdown(view.pending)
        with pytest.raises(InputError, match="no longer running"):
            s.cancel_drafting()
        old_jobs = drafting(view)["jobs"]
        view = s.decide({"type": "redo", "proposal_id": card["proposal_id"]})
        assert view.pending["attempt"] == 2 and set(drafting(view)["jobs"]).isdisjoint(old_jobs)
        view = wait_for(s, lambda v: not drafting(v))
        assert len(view.pending["data"]["candidates"]) == 2
        with pytest.raises(InputError, match="was already decided"):
            s.cancel_drafting(card["proposal_id"])


def test_a_failed_job_shows_its_reason_and_retry_runs_it_again(project):
    painter = SlowPainter(fail=1)
    with open_session(project, painter) as s:
        card = to_first_picture(s).pending
        view = wait_for(s, lambda v: v.pending.get("failure"))
        assert "out of memory" in view.pending["failure"] and drafting(view)["failed"]
        text = card_markdown(view.pending)
        assert "#1 failed: CUDA out of memory" in text and "Retry" in text
        s.retry()
        view = wait_for(s, lambda v: not drafting(v))
        assert view.pending["proposal_id"] == card["proposal_id"] and len(view.pending["data"]["candidates"]) == 2
        assert painter.calls == 3 and s.canon.live("ref-character-aiko") is None   # nothing accepted by itself


def test_a_restart_while_drafting_resumes_the_jobs(project):
    painter = SlowPainter(delay=0.5)
    s = open_session(project, painter)
    card = to_first_picture(s).pending
    s.close()                       # job 1 finishes, job 2 stays queued in state/jobs.sqlite
    again = open_project(project.root)
    with open_session(again, SlowPainter()) as s:
        view = s.view()
        assert view.pending["proposal_id"] == card["proposal_id"]
        view = wait_for(s, lambda v: not drafting(v))
        assert len(view.pending["data"]["candidates"]) == 2
        assert all((again.root / c["path"]).is_file() for c in view.pending["data"]["candidates"])


def test_skip_or_upload_on_a_drafting_card_cancels_its_jobs(project, tmp_path):
    gate = threading.Event()
    with open_session(project, SlowPainter(gate=gate)) as s:
        card = to_first_picture(s).pending
        jobs = drafting(s.view())["jobs"]
        s.skip()
        assert all(s.job_runner.status(j).state in ("cancelled", "running") for j in jobs)
        assert s.job_runner.status(jobs[1]).state == "cancelled"
        assert s.view().pending.get("proposal_id") != card["proposal_id"]
        gate.set()
    gate = threading.Event()
    with open_session(open_project(project.root), SlowPainter(gate=gate)) as s:
        card = s.open_item("reference", "character-ren").pending
        jobs = drafting(s.view())["jobs"]
        image = tmp_path / "mine.png"
        from PIL import Image

        Image.new("RGB", (64, 96), "navy").save(image)
        s.upload(image, proposal_id=card["proposal_id"])
        assert {s.job_runner.status(j).state for j in jobs} <= {"cancelled", "running"}
        assert s.canon.get("ref-character-ren").data["source"] == "upload"
        gate.set()


def test_jobs_done_is_the_sessions_own_decision(project):
    with open_session(project, SlowPainter()) as s:
        card = to_first_picture(s).pending
        with pytest.raises(InputError, match="session's own decision"):
            s.decide({"type": "jobs_done", "results": [], "proposal_id": card["proposal_id"]})


@pytest.mark.parametrize("results, message", [
    (None, "needs 'results'"),
    ([{"data": {}}], "needs 'results'"),
    ([{"files": {"a.png": "/etc/passwd"}, "data": {}}], "is absolute"),
    ([{"files": {"a.png": "assets/../../x.png"}, "data": {}}], "contains '..'"),
    ([{"files": {"a.png": 7}, "data": {}}], "not a project-relative path"),
])
def test_a_jobs_done_decision_names_only_project_files(results, message):
    with pytest.raises(InputError, match=message):
        check_decision({"type": "jobs_done", "results": results})


def test_without_a_runner_pictures_are_painted_in_the_step(project):
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=AnimaticPainter(),
                         candidates=2) as s:
        view = to_first_picture(s)
        assert s.job_runner is None and not drafting(view) and len(view.pending["data"]["candidates"]) == 2


def test_make_waits_for_each_drafting_card_and_never_accepts_one(project):
    from ui.headless import decide_all

    said: list[str] = []
    painter = SlowPainter(delay=0.05)
    with open_session(project, painter, actor="auto") as s:
        view = to_first_picture(s)
        assert drafting(view)
        view = decide_all(s, view, said.append)
        assert not view.awaiting_decision
        panels = [r for r in s.canon.list("panel")]
        shots = s.canon.list("shot")
        assert shots and len(panels) == len(shots) + 2 + 1          # every shot, 2 sheets, 1 background
        assert all(p.data["path"].startswith("assets/panels/") for p in panels)
        assert sum("waiting for 2 jobs" in line for line in said) == len(panels)
        assert painter.calls == 2 * len(panels)
        errors = [e for e in s.ledger.entries() if e["action"] == "accept" and e["actor"] != "auto"]
        assert errors == []


@pytest.mark.slow
def test_open_session_with_ray_draws_the_card_on_ray_actors(project):
    """`make --jobs ray` / [jobs] backend = "ray": the painter runs in a Ray actor (a local cluster
    started here), built from [painter]; its files come back as bytes into the project."""
    from pathlib import Path

    ray = pytest.importorskip("ray")
    from tools.jobs.ray_runner import RayJobRunner
    from ui.session import open_session as open_project_session

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 1024 * 1024,
                 runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    try:
        with open_project_session(project, ScriptedChatModel(), targets=TARGETS, jobs="ray", take_check=False) as s:
            assert isinstance(s.job_runner, RayJobRunner)
            view = to_first_picture(s)
            assert drafting(view)
            view = wait_for(s, lambda v: not drafting(v), timeout=180)
            cands = view.pending["data"]["candidates"]
            assert len(cands) == 2 and all((project.root / c["path"]).is_file() for c in cands)
    finally:
        if started:
            ray.shutdown()


def test_undo_while_a_card_drafts(project):
    gate = threading.Event()
    with open_session(project, SlowPainter(gate=gate)) as s:
        card = to_first_picture(s).pending
        last = s.ledger.last_decided()["record_id"]
        t0 = time.perf_counter()
        rec = s.undo()
        assert time.perf_counter() - t0 < 5 and rec.id == last
        view = s.view()
        assert view.pending["proposal_id"] == card["proposal_id"] and drafting(view)
        gate.set()
        view = wait_for(s, lambda v: not drafting(v))
        assert view.pending["proposal_id"] == card["proposal_id"] and len(view.pending["data"]["candidates"]) == 2
