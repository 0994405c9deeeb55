"""DirectorSession: one open project and its writers' room, for the studio, the CLI and tests.

No gradio here. Every call validates its input before touching the graph, so a bad message or a
bad decision loses nothing: the pending proposal stays on the card.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.context import DirectorContext, Targets
from agent.graph import RECURSION_LIMIT, build_graph
from agent.kinds import lookup
from agent.llm import ChatModel
from agent.review import Decision, ReviewRequest, check_decision, check_message
from memory.bible import Bible
from memory.canon import Record
from memory.errors import InputError, PathOutsideProjectError, RecordNotFoundError
from memory.ledger import Ledger
from memory.project import Project, ProjectLock
from memory.transcript import Transcript, transcript_path, trim_checkpoints
from ui.cards import safe_draft

THREAD_ID = "writers-room"
CHAT_HISTORY = 400    # messages the chat shows (the transcript keeps all of them)
BIBLE_KINDS = ("vision", "series", "style", "character", "location", "prop")   # the director's vision on top


@dataclass(frozen=True)
class SessionView:
    """What a front end shows: the chat, the card, and which model is talking."""

    messages: list[dict[str, str]]
    pending: ReviewRequest | None
    model: str
    is_demo: bool
    stalled: bool = False                     # a run stopped half-way (crash); `retry()` resumes it
    notices: list[str] = field(default_factory=list)
    router: str = ""                          # which router reads chat messages (agent.router), by the badge

    @property
    def awaiting_decision(self) -> bool:
        return bool(self.pending) and self.pending.get("kind") != "input"


class DirectorSession:
    def __init__(self, project: Project, llm: ChatModel, *, targets: Targets | None = None,
                 actor: str = "human", painter: Any = None, candidates: int = 2,
                 loras: dict[str, str] | None = None, voices: Any = None, animator: Any = None,
                 job_runner: Any = None) -> None:
        """`job_runner` (a `tools.jobs.JobRunner` on this project with a "painter" role, or a function
        that builds one once the project's lock is held): reference sheets, backgrounds and panels
        are drafted as its jobs (and takes with a "tts" role, motion clips with an "i2v" role), and
        the session closes it; None: they are made inside the graph step, as before (tests,
        `storyreel chat`)."""
        self.project = project
        self.llm = llm
        self.actor = actor
        self._lock = ProjectLock(project)
        self._lock.acquire()  # ProjectLockedError when another studio or chat has it open
        self._mutex = threading.RLock()
        self.config: dict[str, Any] = {"configurable": {"thread_id": THREAD_ID},
                                       "recursion_limit": RECURSION_LIMIT}
        opened: list[Any] = []
        try:
            from memory.checkpoints import open_checkpointer
            from memory.doctor import require_canon

            self.ledger = Ledger(project.ledger_path)
            # A deleted or emptied canon.sqlite is refused (not recreated empty) when the ledger
            # lists decisions; a commit a crash left without its ledger lines gets them now.
            self.canon = require_canon(project, self.ledger)
            opened.append(self.canon)
            self.ledger.complete(self.canon)
            self.bible = _open_bible(project)
            opened.append(self.bible)
            self._saver = open_checkpointer(project.checkpoints_path)  # the strict serializer
            self._conn = self._saver.conn
            opened.append(self._conn)
            self.graph = build_graph(self._saver)
            snap = self.graph.get_state(self.config)  # a crafted checkpoint is refused now, before any step
            # Only now, with the project held and its checkpoints readable, is anything new written:
            # every chat message, once, in its own append-only table (state keeps a bounded tail) ...
            self.transcript = Transcript(transcript_path(project.root))
            opened.append(self.transcript)
            # ... and the job runner, whose queue from before a restart starts running at once
            if job_runner is not None and not hasattr(job_runner, "submit"):
                job_runner = job_runner()     # a factory: built once this session holds the project
            if job_runner is not None:
                opened.append(job_runner)
            self.context = DirectorContext(canon=self.canon, bible=self.bible, ledger=self.ledger,
                                           llm=llm, targets=targets or Targets(), project_root=project.root,
                                           painter=painter, candidates=candidates, loras=dict(loras or {}),
                                           voices=voices, animator=animator, job_runner=job_runner)
            if snap.values.get("messages") and self.transcript.count(thread_id=self.thread_id) == 0:
                self._record_transcript(snap.values["messages"])   # a project from before the table
        except BaseException:
            for thing in reversed(opened):
                try:
                    thing.close()
                except Exception:  # noqa: BLE001, S110 - closing after a failed open must not hide why
                    pass
            self._lock.release()
            raise
        # The bible index is a cache of canon: index whatever it lacks (deleted, stale or half-written
        # folder) in the background; the session does not wait for it.
        self._stop_sync = threading.Event()
        self._bible_sync = threading.Thread(target=self._sync_bible, name="bible-sync", daemon=True)
        self._bible_sync.start()
        # The offline router embeds its exemplar phrases once per process (a few seconds): now, in the
        # background, rather than on the director's first request.
        self._router_warm = threading.Thread(target=_warm_router, args=(llm,), name="router-warm", daemon=True)
        self._router_warm.start()
        from ui.jobs import RenderJobs

        self.jobs = RenderJobs()        # episode renders
        self.context.renderer = JobRenderer(self)   # "render episode 1" in the chat starts one of them
        from ui.branches import SessionBranches

        self.context.branches = SessionBranches(self, THREAD_ID)   # what-ifs: the branch tools, the panel
        # Pictures drafted as jobs (tools.jobs): the card shows them drafting, and a collector thread
        # resumes the graph (a `jobs_done` decision) when a drafting card's jobs are all done.
        self.job_runner = job_runner
        self._draft_wake = threading.Event()
        self._unsubscribe = None
        self._collector = None
        if job_runner is not None:
            self._unsubscribe = job_runner.subscribe(self._on_job_event)
            self._collector = threading.Thread(target=self._collect_loop, name="draft-collector", daemon=True)
            self._collector.start()
            self._draft_wake.set()       # a card drafting before a restart may be done already

    # ------------------------------------------------------------------ running the graph

    _running = 0          # graph runs in flight (reads say "working", not "stalled", meanwhile)
    _start_error = ""     # why resuming a stalled run failed, shown until it succeeds or is skipped

    def _invoke(self, payload: Any) -> None:
        self._running += 1
        try:
            # "sync": each step's checkpoint is on disk before the next step starts, so a crash never
            # brings back a card that was already decided
            self.graph.invoke(payload, self.config, context=self.context, durability="sync")
        finally:
            self._running -= 1
            try:
                self._record_transcript(self.graph.get_state(self.config).values.get("messages", []))
                trim_checkpoints(self._saver, self.thread_id)   # every step stores the state: keep the newest
            except Exception:
                logging.getLogger(__name__).exception("recording the transcript failed")

    def _record_transcript(self, messages: list[dict[str, Any]]) -> None:
        self.transcript.record([m for m in messages if m.get("id")], thread_id=self.thread_id)

    @property
    def thread_id(self) -> str:
        """The checkpoint thread of the conversation: THREAD_ID on main, its own on a branch."""
        return self.config["configurable"]["thread_id"]

    @property
    def branch(self) -> str:
        """The line of canon the session works on: "main" or a branch (ui/branches.py)."""
        return self.context.branches.current

    def start(self) -> SessionView:
        """Run to the first question (new project) or pick up where the last process stopped.

        Never raises for a step that fails again: every node is contained (agent.guard) and turns
        its error into a failure card; anything outside a node (the checkpointer, the step limit)
        is kept as a notice on the view, and `skip()` leaves the stalled step.
        """
        from agent.guard import describe

        with self._mutex:
            snap = self.graph.get_state(self.config)
            try:
                if not snap.values and not snap.next:
                    self._invoke({"messages": [], "stash": []})
                elif (snap.next or snap.tasks) and not snap.interrupts:
                    # The previous process died mid-step, or after a step's writes were saved but
                    # before its checkpoint (then `next` is empty but the task is there): finish it.
                    self._invoke(None)
                self._start_error = ""
            except Exception as exc:  # noqa: BLE001 - the session must open to let the director leave
                self._start_error = (f"Resuming the last step ({', '.join(snap.next) or 'start'}) failed: "
                                     f"{describe(exc)}. Press Retry, or Skip to leave that step.")
            return self.view()

    def retry(self) -> SessionView:
        """Run a stalled step again, or on a failure card, redo the step that failed."""
        with self._mutex:
            if self.retry_jobs():            # a drafting card's failed jobs run again
                return self.view()
            snap = self.graph.get_state(self.config)
            pending = snap.interrupts[0].value if snap.interrupts else None
            if pending and pending.get("failure") and pending.get("kind") != "input":
                return self._resume({"type": "redo", "actor": self.actor})
            return self.start()

    def skip(self) -> SessionView:
        """Leave the step on the card (or a stalled step that keeps failing): the current task is
        dropped and the agent goes back to an interrupted one, or waits for a message."""
        from langgraph.types import Command

        with self._mutex:
            snap = self.graph.get_state(self.config)
            if snap.interrupts:
                if (snap.interrupts[0].value or {}).get("kind") == "input":
                    raise InputError("there is nothing to skip: the agent is waiting for a message")
                self._drop_drafts(snap.interrupts[0].value)
                return self._resume({"type": "skip", "actor": self.actor})
            if not snap.next:
                raise InputError("there is nothing to skip: no step is running or waiting")
            stuck = snap.next[0]
            self.ledger.append(actor=self.actor, action="skip", kind="step", inputs={"step": stuck},
                               note=f"skipped the stalled {stuck} step")
            text = f"Skipped the {stuck} step that kept failing. Send a message to go on."
            # as the stuck node, so its pending trigger is consumed; then on to wait_input
            self.graph.update_state(self.config, Command(goto="wait_input", update={
                "pending": None, "task": None, "review_error": None,
                "messages": [{"role": "assistant", "content": text}]}), as_node=stuck)
            self._start_error = ""
            return self.start()

    def _resume(self, decision: Decision) -> SessionView:
        from langgraph.types import Command

        self._invoke(Command(resume=dict(decision)))
        self.context.branches.apply_pending()   # a branch tool asked to move the conversation
        return self.view()

    def switch_branch(self, name: str) -> SessionView:
        """Move the conversation to branch `name` or back to "main" (the studio's picker)."""
        with self._mutex:
            self._require_waiting()
            self.context.branches.switch(name)
            self.context.branches.apply_pending()
            return self.view()

    # ------------------------------------------------------------------ drafting cards (jobs)

    @staticmethod
    def _drafting(pending: ReviewRequest | None) -> dict[str, Any] | None:
        """The drafting entry of a card whose pictures are being drawn as jobs, else None."""
        data = (pending or {}).get("data")
        return data.get("drafting") if isinstance(data, dict) and isinstance(data.get("drafting"), dict) else None

    def _job_status(self, job_id: str) -> Any:
        from tools.jobs import JobError, JobStatus

        try:
            return self.job_runner.status(job_id)
        except JobError as exc:   # a job this runner never had (its jobs table was deleted or replaced)
            return JobStatus(job_id=job_id, key="", role="painter", label="", state="failed", progress=0.0,
                             message=str(exc), elapsed_s=0.0, attempts=0, error=str(exc))

    def _with_jobs(self, pending: ReviewRequest | None) -> ReviewRequest | None:
        """A drafting card with its jobs' live status (done/total, elapsed, each job's state and a
        failed one's reason); a card whose jobs all failed or were cancelled says so as its failure,
        so Retry / Redo / Skip apply. Wakes the collector when they are all done."""
        drafting = self._drafting(pending)
        if drafting is None or self.job_runner is None:
            return pending
        statuses = [self._job_status(j) for j in drafting.get("jobs", [])]
        done = sum(st.state == "done" for st in statuses)
        failed = [st for st in statuses if st.state == "failed"]
        cancelled = [st for st in statuses if st.state == "cancelled"]
        active = [st for st in statuses if st.active]
        live = {**drafting, "done": done, "total": len(statuses),
                "elapsed_s": max((st.elapsed_s for st in statuses), default=0.0),
                "status": [{"n": i + 1, "job_id": st.job_id, "state": st.state, "progress": st.progress,
                            "message": st.message if st.active else "", "error": st.error}
                           for i, st in enumerate(statuses)],
                "failed": bool(failed) and not active, "cancelled": bool(cancelled) and not active}
        card = dict(pending or {})
        card["data"] = {**(card.get("data") or {}), "drafting": live}
        if statuses and done == len(statuses):
            self._draft_wake.set()
        elif not active and failed:
            card["failure"] = "; ".join(f"job #{statuses.index(st) + 1} failed: {st.error}" for st in failed)
        elif not active and cancelled:
            card["failure"] = "drafting was cancelled: press Redo to draw again, or Skip this step"
        return card  # type: ignore[return-value]

    def _on_job_event(self, event: Any) -> None:
        if event.state == "done":
            self._draft_wake.set()

    def _collect_loop(self) -> None:
        while not self._stop_sync.is_set():
            self._draft_wake.wait()
            self._draft_wake.clear()
            if self._stop_sync.is_set():
                return
            try:
                self.collect_drafts()
            except Exception:
                logging.getLogger(__name__).exception("turning a drafting card into its candidates failed")

    def collect_drafts(self) -> bool:
        """When the card's jobs are all done, resume the graph with their results (`jobs_done`), so
        the card turns into the candidates. True when it did. Cheap: no painting happens here."""
        if self.job_runner is None:
            return False
        with self._mutex:
            snap = self.graph.get_state(self.config)
            pending = snap.interrupts[0].value if snap.interrupts else None
            drafting = self._drafting(pending)
            if drafting is None:
                return False
            jobs = list(drafting.get("jobs", []))
            if not jobs or any(self._job_status(j).state != "done" for j in jobs):
                return False
            results = []
            for job_id in jobs:
                result = self.job_runner.result(job_id)
                results.append({"job_id": job_id, "files": dict(result.files), "data": dict(result.data)})
            self._resume({"type": "jobs_done", "results": results, "actor": "auto",
                          "proposal_id": (pending or {}).get("proposal_id", "")})
            return True

    def wait_for_drafts(self, timeout: float = 600.0) -> SessionView:
        """Wait (bounded by `timeout` seconds) for the drafting card's jobs, then turn it into its
        candidates (`storyreel make`). A card whose jobs failed or were cancelled comes back as a
        failure card; one still drafting after the timeout comes back drafting. A card drafting in
        stages (a motion card's clips, then its preview) is followed through each stage."""
        import time

        deadline = time.monotonic() + timeout
        view = self.view()
        drafting = self._drafting(view.pending)
        while drafting is not None and self.job_runner is not None:
            for job_id in drafting.get("jobs", []):
                self.job_runner.wait(job_id, timeout=max(0.0, deadline - time.monotonic()))
            self.collect_drafts()
            view = self.view()
            after = self._drafting(view.pending)
            if after is None or after.get("jobs") == drafting.get("jobs") or time.monotonic() >= deadline:
                break
            drafting = after          # the card's next stage of jobs
        return view

    def cancel_drafting(self, proposal_id: str | None = None) -> SessionView:
        """Cancel the drafting card's jobs (the Cancel button); the card then offers Redo and Skip.
        Refused, like a decision, when `proposal_id` names a card that is no longer pending."""
        with self._mutex:
            pending = self._require_waiting()
            self._require_card(pending, proposal_id)
            drafting = self._drafting(pending)
            if drafting is None or self.job_runner is None:
                raise InputError("there is nothing drafting on the card to cancel")
            if not any(self._job_status(j).active for j in drafting.get("jobs", [])):
                raise InputError("the card's jobs are no longer running (finished, failed or cancelled); "
                                 "press Redo to draw again, or Skip this step")
            self._drop_drafts(pending)
            return self.view()

    def _drop_drafts(self, pending: ReviewRequest | None) -> None:
        """Cancel the card's jobs still queued or running (the card is being left or redone)."""
        drafting = self._drafting(pending)
        if drafting is None or self.job_runner is None:
            return
        for job_id in drafting.get("jobs", []):
            if self._job_status(job_id).active:
                self.job_runner.cancel(job_id)

    def retry_jobs(self) -> bool:
        """Queue the drafting card's failed or cancelled jobs again (the Retry button on it)."""
        with self._mutex:
            snap = self.graph.get_state(self.config)
            pending = snap.interrupts[0].value if snap.interrupts else None
            drafting = self._drafting(pending)
            if drafting is None or self.job_runner is None:
                return False
            again = [j for j in drafting.get("jobs", []) if self._job_status(j).state in ("failed", "cancelled")]
            for job_id in again:
                self.job_runner.retry(job_id)
            return bool(again)

    def send(self, text: str) -> SessionView:
        """A chat message: the premise, a question about the bible, or a change request."""
        text = check_message(text)
        with self._mutex:
            self._require_waiting()
            return self._resume({"type": "chat", "text": text, "actor": self.actor})

    def decide(self, decision: dict[str, Any]) -> SessionView:
        """Accept, edit (with data), reject (with a note) or redo the proposal on the card.

        A decision that names its card (`proposal_id`: the studio, the terminal and `make` always
        send it) is refused unless that card is still the one pending, so a form left open or a
        double click never lands on the next proposal. Without one it applies to the card now
        pending (scripts and tests that decide in order).
        """
        decision = dict(decision)
        decision.setdefault("actor", self.actor)
        checked = check_decision(decision)
        with self._mutex:
            pending = self._require_waiting()
            if checked.get("type") != "chat":
                self._require_card(pending, checked.get("proposal_id"))
            if pending.get("kind") == "input":
                raise InputError("there is no proposal to decide on; send a message instead")
            if checked.get("type") == "chat":
                return self.send(checked.get("text", ""))
            if checked.get("type") == "edit" and lookup(pending.get("kind")).media == "images":
                raise InputError(f"a {pending.get('kind')} card has no fields to edit; pick a candidate and "
                                 "Accept, upload your own, or Reject with a note")
            if checked.get("type") == "jobs_done":
                raise InputError("jobs_done is the session's own decision (a drafting card's jobs are done); "
                                 "accept, reject, redo or skip instead")
            if checked.get("type") == "accept" and safe_draft(pending) is not None:
                # a failed card's Accept takes the safe draft it shows, as the director's edit
                checked = {**checked, "type": "edit", "data": safe_draft(pending)}
            if checked.get("type") in ("reject", "redo", "skip"):
                self._drop_drafts(pending)   # the card is redrawn or left: its jobs are not needed
                                             # (an `open` stashes the card: its jobs go on)
            return self._resume(checked)

    @staticmethod
    def _require_card(pending: ReviewRequest, proposal_id: str | None) -> None:
        """Refuse a decision made on a card that is no longer the pending one."""
        if not proposal_id or proposal_id == pending.get("proposal_id"):
            return
        if pending.get("kind") == "input":
            now = "no proposal (the agent is waiting for a message)"
        else:
            now = f"{pending.get('title') or pending.get('kind')} (proposal {pending.get('proposal_id')})"
        raise InputError(f"that card (proposal {proposal_id}) was already decided; the card now shows "
                         f"{now}. Nothing was applied: decide on the card shown now")

    def _require_waiting(self) -> ReviewRequest:
        snap = self.graph.get_state(self.config)
        if not snap.interrupts:
            self.start()
            snap = self.graph.get_state(self.config)
        if not snap.interrupts:
            raise InputError("the director agent is not waiting for input; press Retry")
        return snap.interrupts[0].value

    def upload(self, src: Path, proposal_id: str | None = None) -> SessionView:
        """Use the director's own image (sheet, background, panel) or recording (take) on the card
        (refused, like `decide`, when `proposal_id` names a card that is no longer pending)."""
        from tools.images import import_image

        with self._mutex:
            pending = self._require_waiting()
            self._require_card(pending, proposal_id)
            card = lookup(pending.get("kind"))   # what the card's kind takes (agent.kinds)
            if card.upload and card.media == "audio":
                import uuid

                from tools.audio import import_recording

                dest = self.project.assets_dir / "uploads" / f"recording-{uuid.uuid4().hex[:12]}.wav"
                dest.parent.mkdir(parents=True, exist_ok=True)
                import_recording(Path(src), dest)
                return self._resume({"type": "upload", "path": self.project.relative(dest), "actor": self.actor})
            if not (card.upload and card.media == "images"):
                raise InputError("there is nothing on the card to replace; uploads are for reference "
                                 "sheets, backgrounds, panels and line takes")
            size = None if pending.get("kind") == "reference" else (1080, 1920)
            dest = import_image(Path(src), self.project.assets_dir / "uploads", size=size)
            self._drop_drafts(pending)   # the director's own image replaces what was drafting
            return self._resume({"type": "upload", "path": self.project.relative(dest), "actor": self.actor})

    def open_item(self, kind: str, subject: str) -> SessionView:
        """Put a storyboard item (a shot's panel, a reference sheet...) on the card now."""
        if lookup(kind).media != "images" and kind != "shots":
            raise InputError(f"cannot open {kind!r}; open a panel, reference, background or shots")
        self.canon.get(subject)  # RecordNotFoundError names a bad id before anything changes
        task = {"kind": kind, "scene_id": subject} if kind == "shots" else {"kind": kind, "subject": subject}
        with self._mutex:
            self._require_waiting()
            return self._resume({"type": "open", "task": task, "actor": self.actor})

    def start_episode(self, episode: int) -> SessionView:
        """Start `episode` (the studio's button; "let's start episode 2" in the chat does the same
        through agent.tools.episodes): marked started in canon and logged, then its first card is
        put on the review gate (the story so far of the episode before, when still to review, else
        its beats); a card that was on screen comes back after it. InputError names the outline's
        episode count for an episode it does not have."""
        from agent import episodes
        from agent.kinds import next_task

        with self._mutex:
            self._require_waiting()
            episodes.start_episode(self.canon, self.ledger, episode, actor=self.actor,
                                   request=f"start episode {episode}")
            task = next_task(self.canon, self.context, episode=episode - 1) if episode > 1 else None
            if task is None or task.get("kind") != "facts":
                task = next_task(self.canon, self.context, episode=episode)
            elif self._facts_on_card(int(task.get("episode") or 0)):
                return self.view()   # the story so far before it is on the card already: it stays
            field = lookup(task["kind"]).opens if task is not None else None
            if task is None or not field:
                return self.view()
            task = {**task, field: task.get(field) or episodes.episode_record_id(int(task.get("episode") or episode))}
            return self._resume({"type": "open", "task": task, "actor": self.actor})

    def add_cold_open(self, episode: int) -> SessionView:
        """Propose a "previously on" for `episode` (the Episode tab's button; "add a previously on
        to episode 2" in the chat does the same through agent.tools.recap): 3–6 s of accepted shots
        of the episode before, on the card now; the card that was on screen comes back after it.
        InputError names an episode that cannot have one (episode 1, or one whose episode before
        has no accepted shots yet, or too few seconds of them)."""
        from agent.episodes import episode_record_id
        from agent.kinds.recap import draft_cold_open

        with self._mutex:
            self._require_waiting()
            draft_cold_open(self.canon, self.project, episode)   # InputError: why it cannot be made
            task = {"kind": "cold_open", "target_id": None, "episode": episode,
                    "subject": episode_record_id(episode)}
            return self._resume({"type": "open", "task": task, "actor": self.actor})

    def _facts_on_card(self, episode: int) -> bool:
        """Whether the card on screen is the story so far of `episode`."""
        pending = self.view().pending or {}
        return pending.get("kind") == "facts" and (pending.get("data") or {}).get("episode") == episode

    # ------------------------------------------------------------------ reading

    def storyboard(self, episode: int | None = None) -> list[dict[str, Any]]:
        """Each scene's shots in order (of one ``episode``, or of all), with the accepted panel (if
        any), its status, and the state of a panel job queued for it (``job``: {"state", "words",
        "error"} — queued, running, ready for review, failed: reason — or None)."""
        from agent.storyboard import image_record_id, image_status, ordered_scenes, shots_of
        from agent.tools.batch import item_jobs

        view = self.view()
        drafting = (view.pending or {}).get("data") or {}
        board = []
        scenes = ordered_scenes(self.canon) if episode is None else sorted(
            self.canon.children("scene", "episode", episode), key=lambda r: r.data.get("number", 0))
        jobs_by_episode: dict[int, dict[str, Any]] = {}
        for scene in scenes:
            shots = []
            ep = int(scene.data.get("episode") or 1)
            if ep not in jobs_by_episode:
                jobs_by_episode[ep] = item_jobs(self.context, "panels", ep) if self.job_runner is not None else {}
            for shot in shots_of(self.canon, scene.id):
                try:
                    panel = self.canon.get(image_record_id("panel", shot.id))
                except RecordNotFoundError:
                    panel = None
                status, reasons = ("draft", []) if panel is None or panel.deleted else image_status(self.canon, panel, getattr(self.context.painter, "name", None))
                rel = None
                if panel is not None and not panel.deleted:
                    rel = panel.data.get("path")
                elif drafting.get("subject") == shot.id and drafting.get("candidates"):
                    rel = drafting["candidates"][0].get("path")
                path = None
                if rel:
                    try:
                        path = self.project.resolve(rel)
                    except PathOutsideProjectError as exc:  # shown, never drawn or served
                        status, reasons = "stale", [*reasons, str(exc)]
                shots.append({"shot": shot, "panel": panel, "status": status, "reasons": reasons, "image": path,
                              "job": jobs_by_episode[ep].get(shot.id)})
            board.append({"scene": scene, "shots": shots})
        return board

    def batch_jobs(self, episode: int) -> list[dict[str, Any]]:
        """The storyboard's other job rows for `episode`: each line whose take, and each scene whose
        motion, a batch (or its card) queued: {"item", "what" ("take" | "motion"), "state", "words"}."""
        from agent.tools.batch import item_jobs

        if self.job_runner is None:
            return []
        rows = []
        for what, label in (("takes", "take"), ("clips", "motion")):
            for item, job in item_jobs(self.context, what, episode).items():
                rows.append({"item": item, "what": label, "state": job["state"], "words": job["words"]})
        return rows

    def draft_all(self, what: str = "panels", episode: int | None = None) -> str:
        """Queue a job for every missing or stale panel, take or scene motion (`what` = "panels",
        "takes", "clips") of `episode` (the storyboard's
        "Draft all missing panels"; "draft all panels for episode 1" in the chat): their cards come
        in order, opening at once when their jobs are done. Queuing again adds nothing. Returns what
        was queued, in words; InputError without a job runner."""
        from agent.tools import ToolContext
        from agent.tools.batch import DraftAllArgs
        from agent.tools.batch import draft_all as run

        with self._mutex:
            return run(ToolContext(ctx=self.context, state={}), DraftAllArgs(what=what, episode=episode)).say

    def export_contact_sheet(self, episode: int = 1) -> tuple[Path, Path]:
        """The episode's storyboard as a PNG and a PDF in renders/epNN/."""
        from tools.images import contact_sheet

        if not isinstance(episode, int) or isinstance(episode, bool) or episode < 1:
            raise InputError(f"episode {episode!r} is not an episode number; use 1, 2, 3…")
        items = []
        for entry in self.storyboard():
            if entry["scene"].data.get("episode") != episode:
                continue
            for sh in entry["shots"]:
                d = sh["shot"].data
                label = f"{sh['shot'].id} · {d.get('framing')} · {d.get('duration_s')}s"
                items.append((sh["image"] if sh["panel"] else None, label, sh["status"]))
        if not items:
            raise InputError(f"episode {episode} has no planned shots yet; accept a shot plan first")
        out = self.project.resolve(Path("renders", f"ep{episode:02d}"))  # the one resolver, even here
        title = f"{self.project.name} — episode {episode} storyboard"
        png = contact_sheet(items, out / "contact_sheet.png", out / "contact_sheet.pdf", title=title)
        return png, out / "contact_sheet.pdf"

    def voices(self, episode: int | None = None) -> dict[str, Any]:
        """The cast's voices and every line's takes per language, with their status, for ``episode``
        (default: the episode the studio shows, `current_episode`)."""
        from agent.voices import PRIMARY_LANGUAGE, dub_languages, episode_lines, take_id, take_status

        cast = self.canon.list("voice")
        rows = []
        for language in [PRIMARY_LANGUAGE, *dub_languages(self.canon)]:
            for scene, line in episode_lines(self.canon, episode or self.current_episode()):
                try:
                    take = self.canon.get(take_id(line["id"], language))
                except RecordNotFoundError:
                    take = None
                status = "draft" if take is None or take.deleted else take_status(self.canon, take)[0]
                rows.append({"line_id": line["id"], "language": language, "speaker": line.get("speaker"),
                             "text": line.get("line"), "take": take, "status": status,
                             "check": self._take_check(take)})
        return {"cast": cast, "takes": rows}

    def set_glossary(self, term: str, language: str, target: str) -> Record:
        """A per-series glossary entry (names, honorifics) every translation must keep."""
        from agent.voices import glossary, language_code

        term, target = term.strip(), target.strip()
        if not term or not target:
            raise InputError("a glossary entry needs a term and its translation")
        code = language_code(language)
        terms = [t for t in glossary(self.canon) if t.get("term") != term] + [
            {**next((t for t in glossary(self.canon) if t.get("term") == term), {"term": term}), code: target}]
        with self._mutex:
            rec = self.canon.upsert("glossary", {"terms": terms}, actor=self.actor, record_id="glossary",
                                    note=f"{term} -> {target} ({code})")
            self.bible.index(rec)
            self.ledger.append(actor=self.actor, action="edit", record_id=rec.id, kind=rec.kind, rev=rec.rev,
                               inputs={"term": term, "language": code, "target": target}, note=rec.note)
            return rec

    def render(self, *, episode: int = 1, language: str = "en", music: Path | None = None) -> Any:
        """Cut the episode in a background job (the chat stays usable); returns the Job to poll."""
        from agent.cut import episode_spec, render_cut

        episode_spec(self.canon, self.project.root, episode=episode, language=language)  # errors now, not later
        music_path = None
        if music is not None:
            from tools.audio import probe_recording

            probe = probe_recording(Path(music))  # InputError naming the file when it is unreadable
            if not probe.audio_codec:
                raise InputError(f"music file {Path(music).name} has no audio ({probe.format_name}); "
                                 "choose a WAV, MP3, M4A, FLAC or OGG file, or no music")
            music_path = Path(music)
        self.ledger.append(actor=self.actor, action="render", record_id=f"episode-{episode}", kind="episode",
                           inputs={"language": language, "music": str(music_path) if music_path else None},
                           note=f"render episode {episode} ({language})")
        return self.jobs.submit("render", lambda progress: render_cut(
            self.canon, self.project.root, episode=episode, language=language, music=music_path,
            progress=progress))

    def episode_timeline(self, *, episode: int = 1, language: str = "en") -> list[tuple[str, float, float]]:
        """(shot id, start, duration) of the cut as it would be rendered now."""
        from agent.cut import episode_spec
        from tools.render import timeline

        return [(sid, start, dur) for sid, start, dur in
                timeline(episode_spec(self.canon, self.project.root, episode=episode, language=language))]

    def image_path(self, rel: str) -> Path:
        return self.project.resolve(rel)

    def view(self) -> SessionView:
        """The last saved step: chat, card, stalled or not. Never waits for a running generation:
        the checkpointer serialises its own connection, and a run in flight shows the state saved
        before it (not 'stalled')."""
        snap = self.graph.get_state(self.config)
        pending = snap.interrupts[0].value if snap.interrupts else None
        pending = self._with_jobs(self._with_take_check(pending))
        return SessionView(messages=self._chat(snap.values.get("messages", [])), pending=pending,
                           model=self.llm.description, is_demo=bool(getattr(self.llm, "is_demo", False)),
                           stalled=bool(snap.next) and not snap.interrupts and not self._running,
                           notices=[self._start_error] if self._start_error else [], router=self.router_name)

    def _chat(self, tail: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The chat as the director sees it: the last CHAT_HISTORY messages of the transcript, plus
        any of the state's tail a run in flight has not recorded yet."""
        recorded = [{"id": m["id"], "role": m["role"], "content": m["content"]}
                    for m in self.transcript.tail(CHAT_HISTORY, thread_id=self.thread_id)]
        ids = {m["id"] for m in recorded}
        return recorded + [dict(m) for m in tail if m.get("id") not in ids]

    @property
    def router_name(self) -> str:
        """Which router turns chat messages into tool calls: the offline router for the embedded demo
        model (and scripted models), model tool calling for a configured endpoint."""
        from agent.router import router_name

        return router_name(self.llm)

    def records(self, kinds: tuple[str, ...] = BIBLE_KINDS) -> dict[str, list[Record]]:
        return {kind: self.canon.list(kind) for kind in kinds}

    # ------------------------------------------------------------------ the series

    _episode: int | None = None   # the episode the studio's tabs show (None: the latest started)

    def current_episode(self) -> int:
        """The episode the storyboard, voices and episode tabs show and render: the one picked with
        `pick_episode`, else the latest started (agent.series.latest_started_episode)."""
        from agent.series import latest_started_episode

        return self._episode or latest_started_episode(self.canon)

    def pick_episode(self, episode: int) -> int:
        """Show (and render) ``episode`` in the studio's tabs; it must be one the series knows."""
        from agent.series import check_episode, series_episodes

        check_episode(episode)
        known = series_episodes(self.canon)
        if known and episode not in known:
            raise InputError(f"episode {episode} is not in the outline (episodes {', '.join(map(str, known))}); "
                             "pick one of those, or add it to the outline first")
        self._episode = episode
        return episode

    def series_board(self, language: str = "en") -> list[Any]:
        """One agent.series.EpisodeStatus per episode: outline / writing / storyboard / voiced / cut / stale."""
        from agent.series import series_board

        return series_board(self.canon, self.project, language=language,
                            painter=getattr(self.context.painter, "name", None))

    def export_season(self, out_dir: Path | None = None, language: str = "en") -> Any:
        """Every rendered episode's files, a season timeline and contact sheet (agent.series.export_season)."""
        from agent.series import export_season

        return export_season(self.canon, self.project, out_dir, language=language)

    def credits(self, episode: int | None = None) -> Any:
        """The Credits tab (ui.credits.CreditsView) for ``episode`` or the whole series; writes the
        report files into PROJECT/reports/ (a branch's into PROJECT/reports/branches/NAME/)."""
        from ui.credits import credits_view

        if self.branch == "main":
            return credits_view(self.canon, self.ledger, self.project, episode=episode)
        from dataclasses import replace

        from ui.report import reports_dir, write_report

        view = credits_view(self.canon, self.ledger, self.project, episode=episode, write_files=False)
        out = reports_dir(self.project) / "branches" / self.branch
        return replace(view, files=tuple(write_report(view.report, self.project, out).values()))

    def outline(self) -> dict[str, Any]:
        """The season outline, episode 1's beats and its scenes, for the outline panel."""
        return {"outline": self.canon.live("outline"), "beats": [r for r in self.canon.list("beats")],
                "scenes": self.canon.list("scene")}

    def history(self, record_id: str) -> list[Record]:
        return self.canon.history(record_id)

    # ------------------------------------------------------------------ undo

    def undo(self, record_id: str | None = None, to_rev: int | None = None) -> Record:
        """Revert a record to an earlier revision (default: the one before the current).

        Without a record id, undoes the last accepted change. Reverting revision 1 deletes the
        record (a tombstone revision; it can be brought back). The revert is a logged decision.
        When the change undone came from a structural edit (a reorder, split, merge or removal),
        all of that edit is undone, as the chat's `undo` does (`agent.tools.actions.undo_change`,
        the one place that decides); the record asked about (or the first one) is returned.
        """
        from agent.tools.actions import undo_change

        with self._mutex:
            done = undo_change(self.context, record_id, to_rev, actor=self.actor)
            self._recheck_card(done.records)
            self._propose_redraws()
            return done.record

    def _recheck_card(self, records: list[Record]) -> None:
        """After a revert of a fact or a summary, the continuity warnings of the card on screen are
        checked again against canon as it is now (as the chat's `undo` does): same card, new warnings."""
        from langgraph.types import Command

        from agent.kinds.facts import CHECKED_KINDS, refresh_warnings

        if not any(r.kind in ("fact", "summary") for r in records):
            return
        snap = self.graph.get_state(self.config)
        pending = snap.values.get("pending") or {}
        if not snap.interrupts or "review" not in snap.next or pending.get("kind") not in CHECKED_KINDS:
            return
        refreshed = refresh_warnings(self.canon, self.context, pending)
        if refreshed.get("warnings") == pending.get("warnings"):
            return
        self.graph.update_state(self.config, Command(goto="review", update={"pending": refreshed}), as_node="review")
        self._invoke(None)

    def _propose_redraws(self) -> None:
        """After a revert, the agent puts the first picture it made stale (or removed) on the card
        when nothing else is there; the rest follow as the director decides (`plan_next`)."""
        from agent.storyboard import next_storyboard_task

        snap = self.graph.get_state(self.config)
        if not snap.interrupts or (snap.interrupts[0].value or {}).get("kind") != "input":
            return   # a card is pending: redraws come after it
        task = next_storyboard_task(self.canon, self.context)
        if task and lookup(task.get("kind")).opens:
            self._resume({"type": "open", "task": dict(task), "actor": self.actor})

    def _sync_bible(self) -> None:
        try:
            self.bible.sync(self.canon, stop=self._stop_sync)
        except Exception as exc:  # noqa: BLE001 - a background repair; the next open tries again
            import logging

            logging.getLogger(__name__).warning("bible index sync failed (run `storyreel reindex`): %s", exc)

    def _with_take_check(self, pending: ReviewRequest | None) -> ReviewRequest | None:
        """A take card with its ear check as it stands now (read from beside the take; queued in
        the background when nobody has), so the card says "checking by ear…", then what was heard."""
        from agent.take_checks import card_with_check

        return card_with_check(pending, self.context.voices, self.project, self.canon)  # type: ignore[return-value]

    def _take_check(self, take: Record | None) -> dict[str, Any] | None:
        from agent.take_checks import take_check_status

        if take is None or take.deleted:
            return None
        return take_check_status(take, self.context.voices, self.project, self.canon)

    @property
    def take_checks(self) -> Any:
        """The background ear checker (`agent.take_checks.TakeChecks`); None when takes are not checked."""
        from agent.take_checks import checks_of

        return checks_of(self.context.voices)

    def record_take_checks(self, timeout: float | None = None) -> int:
        """Wait (bounded) for the ear checks in flight, then store each finished one in its accepted
        take's record (`storyreel make` does this at its end). Returns how many were recorded."""
        from agent.take_checks import MAKE_WAIT_S, record_take_checks

        checks = self.take_checks
        if checks is not None:
            checks.wait(MAKE_WAIT_S if timeout is None else timeout)   # outside the lock: nothing waits on it
        with self._mutex:
            # the checker, not the director, wrote it: logged as `auto` (bookkeeping for the authorship report)
            return record_take_checks(self.canon, self.ledger, self.project, checks, actor="auto", timeout=0)

    def close(self) -> None:
        self._stop_sync.set()
        self._draft_wake.set()
        if self._collector is not None:
            self._collector.join(timeout=30)
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.job_runner is not None:
            self.job_runner.close()    # running jobs finish; queued ones stay queued for the next open
        if self.take_checks is not None:
            self.take_checks.close()
        self._bible_sync.join(timeout=60)
        # native inference (onnxruntime) still running in a thread when the process exits aborts it
        # ("terminate called without an active exception"): the warm-up is a few seconds at most
        self._router_warm.join(timeout=60)
        with self._mutex:
            try:
                self._conn.close()
                self.transcript.close()
                self.context.branches.close()   # a branch view; main's canon and bible follow
                self.canon.close()
                close = getattr(self.bible, "close", None)
                if close:
                    close()
            finally:
                self._lock.release()

    def __enter__(self) -> DirectorSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JobRenderer:
    """The chat's `render` tool in a session (agent.tools.actions.EpisodeRenderer): the render runs
    as the session's background job (`DirectorSession.jobs`, the one the Episode tab follows), so
    the chat answers at once. A full render is `DirectorSession.render`; a preview renders the
    low-res cut without motion (`render_now(..., preview=True)`) into renders/epNN/preview/."""

    def __init__(self, session: DirectorSession) -> None:
        self._session = session

    def start(self, episode: int, *, preview: bool) -> str:
        s = self._session
        if not preview:
            job = s.render(episode=episode)
            where = f"renders/ep{episode:02d}/"
        else:
            from agent.tools.actions import render_now

            s.ledger.append(actor=s.actor, action="render", record_id=f"episode-{episode}", kind="episode",
                            inputs={"preview": True}, note=f"render a preview of episode {episode}")
            job = s.jobs.submit("render", lambda progress: render_now(s.context, episode, preview=True,
                                                                      progress=progress))
            where = f"renders/ep{episode:02d}/preview/"
        what = f"a preview of episode {episode}" if preview else f"episode {episode}"
        return (f"Rendering {what} in the background (job {job.id}) into {where}; the Episode tab shows its "
                "progress, and the chat stays open meanwhile.")


def _warm_router(llm: ChatModel) -> None:
    from agent.router import offline_router, uses_tool_calls

    if uses_tool_calls(llm):
        return
    try:
        offline_router().warm()
    except Exception as exc:  # noqa: BLE001 - a cache; the first request loads it again and says why
        import logging

        logging.getLogger(__name__).warning("the chat router could not load its exemplars: %s", exc)


def _open_bible(project: Project) -> Bible:
    """The bible index; one chroma cannot open is moved aside into state/quarantine/ and started
    afresh (it is a cache of canon, refilled in the background)."""
    from memory.errors import BackendError

    try:
        return Bible(project.chroma_dir)
    except BackendError:
        folder = project.chroma_dir
        if not folder.is_dir() or not any(folder.iterdir()):
            raise
        import shutil
        import time

        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = project.root / "state" / "quarantine" / stamp / "bible-chroma"
        n = 1
        while aside.exists():
            n += 1
            aside = aside.parent.with_name(f"{stamp}-{n}") / "bible-chroma"
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(aside))
        return Bible(folder)


def build_job_runner(project: Project, painter: Any, *, backend: str | None = None, voices: Any = None,
                     animator: Any = None) -> Any:
    """The job runner a project's [jobs] table names (`backend` overrides it: "inprocess" or "ray"),
    with the painter, voices and motion-preview roles. In-process with one GPU lane, the painter is
    the session's own instance (its pipeline loads once); Ray actors, or several lanes, each build
    their own from [painter]. In-process, takes are voiced by the session's `voices` (one synth cache)
    when given; a motion card's preview renders on the cpu lane; with an image-to-video `animator`
    ([motion] backend = "animatediff"), motion clips are jobs too."""
    from tools.jobs import Registry, jobs_settings, runner_from_settings
    from tools.jobs.roles import (
        i2v_role,
        i2v_role_for,
        painter_role,
        painter_role_for,
        preview_role,
        tts_role,
        tts_role_for,
    )

    section = dict(project.settings.get("jobs") or {})
    settings = jobs_settings(section if backend is None else {**section, "backend": backend})
    shared = settings["backend"] == "inprocess" and settings["lanes"]["gpu"] == 1 and painter is not None
    paint = painter_role_for(painter) if shared else painter_role(project.settings.get("painter"))
    voice = dict(project.settings.get("voice", {}))
    speak = (tts_role_for(voices) if voices is not None and settings["backend"] == "inprocess"
             else tts_role(voice.get("openai")))
    registry = Registry([paint, speak, preview_role()])
    if animator is not None:
        registry.register(i2v_role_for(animator) if shared else i2v_role(project.settings.get("motion")))
    return runner_from_settings(project, registry, backend=backend)


def open_session(project: Project, llm: ChatModel, *, targets: Targets | None = None,
                 actor: str = "human", take_check: bool | None = None, jobs: str | None = None
                 ) -> DirectorSession:
    """A session with the backends the project's settings name ([painter] in project.toml).

    `jobs`: None paints inside the graph step (the terminal chat); "settings" drafts pictures as jobs
    on the runner project.toml's [jobs] names (the studio, `make`); "inprocess" or "ray" choose it."""
    from tools.backends.factory import animator_from_settings, painter_from_settings, painter_settings

    section = project.settings.get("painter")
    _, candidates, options = painter_settings(section)
    painter = painter_from_settings(section)
    from agent.voices import VoiceBackends

    voice = dict(project.settings.get("voice", {}))
    targets = targets or Targets.from_settings(project.settings)   # one set of targets per project
    if jobs not in (None, "settings", "inprocess", "ray"):
        raise InputError(f"jobs = {jobs!r}: use \"inprocess\" or \"ray\" (or the project's [jobs] table)")
    backend = None if jobs in (None, "settings") else jobs
    voices = VoiceBackends(voice.get("openai"), checker=take_checker(voice, take_check))
    animator = animator_from_settings(project.settings.get("motion"))
    runner = None if jobs is None else (lambda: build_job_runner(project, painter, backend=backend, voices=voices,
                                                                 animator=animator))
    return DirectorSession(project, llm, targets=targets, actor=actor, painter=painter, job_runner=runner,
                           candidates=candidates, loras=dict(options.get("loras", {})),
                           voices=voices, animator=animator)


def take_checker(voice: dict[str, Any], take_check: bool | None = None) -> Any:
    """The ear checker of a session's takes: Whisper-base (loaded in the background on the first
    take) unless `--no-take-check` (``take_check=False``) or project.toml ``[voice] take_check =
    false`` turns it off. When faster-whisper is not installed the cards say how to add it."""
    enabled = voice.get("take_check", True) if take_check is None else take_check
    if not isinstance(enabled, bool):
        raise InputError(f"project.toml [voice] take_check = {enabled!r}: write true or false")
    if not enabled:
        return None
    from tools.take_check import WhisperTranscriber

    return WhisperTranscriber()
