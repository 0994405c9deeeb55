"""DirectorSession: one open project and its writers' room, for the studio, the CLI and tests.

No gradio here. Every call validates its input before touching the graph, so a bad message or a
bad decision loses nothing: the pending proposal stays on the card.
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.context import DirectorContext, Targets
from agent.graph import RECURSION_LIMIT, build_graph
from agent.llm import ChatModel
from agent.review import Decision, ReviewRequest, check_decision, check_message
from agent.storyboard import VISUAL_KINDS
from memory.bible import Bible
from memory.canon import Canon, Record
from memory.errors import InputError, RecordNotFoundError
from memory.ledger import Ledger
from memory.project import Project, ProjectLock

THREAD_ID = "writers-room"
BIBLE_KINDS = ("series", "style", "character", "location", "prop")


@dataclass(frozen=True)
class SessionView:
    """What a front end shows: the chat, the card, and which model is talking."""

    messages: list[dict[str, str]]
    pending: ReviewRequest | None
    model: str
    is_demo: bool
    stalled: bool = False                     # a run stopped half-way (crash); `retry()` resumes it
    notices: list[str] = field(default_factory=list)

    @property
    def awaiting_decision(self) -> bool:
        return bool(self.pending) and self.pending.get("kind") != "input"


class DirectorSession:
    def __init__(self, project: Project, llm: ChatModel, *, targets: Targets | None = None,
                 actor: str = "human", painter: Any = None, candidates: int = 2,
                 loras: dict[str, str] | None = None, voices: Any = None, animator: Any = None) -> None:
        self.project = project
        self.llm = llm
        self.actor = actor
        self._lock = ProjectLock(project)
        self._lock.acquire()  # ProjectLockedError when another studio or chat has it open
        self._mutex = threading.RLock()
        try:
            self.canon = Canon(project.canon_path)
            self.bible = Bible(project.chroma_dir)
            self.ledger = Ledger(project.ledger_path)
            project.checkpoints_path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(project.checkpoints_path, check_same_thread=False)
            from langgraph.checkpoint.sqlite import SqliteSaver

            self._saver = SqliteSaver(self._conn)
            self.graph = build_graph(self._saver)
            self.context = DirectorContext(canon=self.canon, bible=self.bible, ledger=self.ledger,
                                           llm=llm, targets=targets or Targets(), project_root=project.root,
                                           painter=painter, candidates=candidates, loras=dict(loras or {}),
                                           voices=voices, animator=animator)
        except BaseException:
            self._lock.release()
            raise
        self.config: dict[str, Any] = {"configurable": {"thread_id": THREAD_ID},
                                       "recursion_limit": RECURSION_LIMIT}
        from ui.jobs import JobRunner

        self.jobs = JobRunner()

    # ------------------------------------------------------------------ running the graph

    def _invoke(self, payload: Any) -> None:
        self.graph.invoke(payload, self.config, context=self.context)

    def start(self) -> SessionView:
        """Run to the first question (new project) or pick up where the last process stopped."""
        with self._mutex:
            snap = self.graph.get_state(self.config)
            if not snap.values and not snap.next:
                self._invoke({"messages": [], "stash": []})
            elif snap.next and not snap.interrupts:
                self._invoke(None)  # the previous process died mid-step: finish that step
            return self.view()

    def retry(self) -> SessionView:
        return self.start()

    def _resume(self, decision: Decision) -> SessionView:
        from langgraph.types import Command

        self._invoke(Command(resume=dict(decision)))
        return self.view()

    def send(self, text: str) -> SessionView:
        """A chat message: the premise, a question about the bible, or a change request."""
        text = check_message(text)
        with self._mutex:
            self._require_waiting()
            return self._resume({"type": "chat", "text": text, "actor": self.actor})

    def decide(self, decision: dict[str, Any]) -> SessionView:
        """Accept, edit (with data), reject (with a note) or redo the proposal on the card."""
        decision = dict(decision)
        decision.setdefault("actor", self.actor)
        checked = check_decision(decision)
        with self._mutex:
            pending = self._require_waiting()
            if pending.get("kind") == "input":
                raise InputError("there is no proposal to decide on; send a message instead")
            if checked.get("type") == "chat":
                return self.send(checked.get("text", ""))
            return self._resume(checked)

    def _require_waiting(self) -> ReviewRequest:
        snap = self.graph.get_state(self.config)
        if not snap.interrupts:
            self.start()
            snap = self.graph.get_state(self.config)
        if not snap.interrupts:
            raise InputError("the director agent is not waiting for input; press Retry")
        return snap.interrupts[0].value

    def upload(self, src: Path) -> SessionView:
        """Use the director's own image (sheet, background, panel) or recording (take) on the card."""
        from tools.images import import_image

        with self._mutex:
            pending = self._require_waiting()
            if pending.get("kind") == "take":
                import uuid

                from tools.audio import import_recording

                dest = self.project.assets_dir / "uploads" / f"recording-{uuid.uuid4().hex[:12]}.wav"
                dest.parent.mkdir(parents=True, exist_ok=True)
                import_recording(Path(src), dest)
                return self._resume({"type": "upload", "path": self.project.relative(dest), "actor": self.actor})
            if pending.get("kind") not in VISUAL_KINDS:
                raise InputError("there is nothing on the card to replace; uploads are for reference "
                                 "sheets, backgrounds, panels and line takes")
            size = None if pending.get("kind") == "reference" else (1080, 1920)
            dest = import_image(Path(src), self.project.assets_dir / "uploads", size=size)
            return self._resume({"type": "upload", "path": self.project.relative(dest), "actor": self.actor})

    def open_item(self, kind: str, subject: str) -> SessionView:
        """Put a storyboard item (a shot's panel, a reference sheet...) on the card now."""
        if kind not in (*VISUAL_KINDS, "shots"):
            raise InputError(f"cannot open {kind!r}; open a panel, reference, background or shots")
        self.canon.get(subject)  # RecordNotFoundError names a bad id before anything changes
        task = {"kind": kind, "scene_id": subject} if kind == "shots" else {"kind": kind, "subject": subject}
        with self._mutex:
            self._require_waiting()
            return self._resume({"type": "open", "task": task, "actor": self.actor})

    # ------------------------------------------------------------------ reading

    def storyboard(self) -> list[dict[str, Any]]:
        """Each scene's shots in order, with the accepted panel (if any) and its status."""
        from agent.storyboard import image_record_id, image_status, ordered_scenes, shots_of

        view = self.view()
        drafting = (view.pending or {}).get("data") or {}
        board = []
        for scene in ordered_scenes(self.canon):
            shots = []
            for shot in shots_of(self.canon, scene.id):
                try:
                    panel = self.canon.get(image_record_id("panel", shot.id))
                except RecordNotFoundError:
                    panel = None
                status, reasons = ("draft", []) if panel is None or panel.deleted else image_status(self.canon, panel, getattr(self.context.painter, "name", None))
                path = None
                if panel is not None and not panel.deleted:
                    path = self.project.root / panel.data["path"]
                elif drafting.get("subject") == shot.id and drafting.get("candidates"):
                    path = self.project.root / drafting["candidates"][0]["path"]
                shots.append({"shot": shot, "panel": panel, "status": status, "reasons": reasons, "image": path})
            board.append({"scene": scene, "shots": shots})
        return board

    def export_contact_sheet(self, episode: int = 1) -> tuple[Path, Path]:
        """The episode's storyboard as a PNG and a PDF in renders/epNN/."""
        from tools.images import contact_sheet

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
        out = self.project.renders_dir / f"ep{episode:02d}"
        title = f"{self.project.name} — episode {episode} storyboard"
        png = contact_sheet(items, out / "contact_sheet.png", out / "contact_sheet.pdf", title=title)
        return png, out / "contact_sheet.pdf"

    def voices(self) -> dict[str, Any]:
        """The cast's voices and every line's takes per language, with their status."""
        from agent.voices import PRIMARY_LANGUAGE, dub_languages, episode_lines, take_id, take_status

        cast = self.canon.list("voice")
        rows = []
        for language in [PRIMARY_LANGUAGE, *dub_languages(self.canon)]:
            for scene, line in episode_lines(self.canon):
                try:
                    take = self.canon.get(take_id(line["id"], language))
                except RecordNotFoundError:
                    take = None
                status = "draft" if take is None or take.deleted else take_status(self.canon, take)[0]
                rows.append({"line_id": line["id"], "language": language, "speaker": line.get("speaker"),
                             "text": line.get("line"), "take": take, "status": status})
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
        with self._mutex:
            snap = self.graph.get_state(self.config)
            pending = snap.interrupts[0].value if snap.interrupts else None
            return SessionView(messages=list(snap.values.get("messages", [])), pending=pending,
                               model=self.llm.description, is_demo=bool(getattr(self.llm, "is_demo", False)),
                               stalled=bool(snap.next) and not snap.interrupts)

    def records(self, kinds: tuple[str, ...] = BIBLE_KINDS) -> dict[str, list[Record]]:
        return {kind: self.canon.list(kind) for kind in kinds}

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
        """
        with self._mutex:
            if record_id is None:
                decided = [e for e in self.ledger.entries()
                           if e.get("actor") in ("human", "auto") and e.get("record_id")
                           and e.get("action") in ("accept", "edit", "revert")]
                if not decided:
                    raise InputError("nothing to undo yet: no accepted record")
                record_id = decided[-1]["record_id"]
            current = self.canon.get(record_id)
            target = current.rev - 1 if to_rev is None else to_rev
            if target < 0 or target >= current.rev:
                raise InputError(f"cannot revert {record_id} (rev {current.rev}) to rev {target}; "
                                 f"choose a revision between 0 and {current.rev - 1} (0 deletes it)")
            if target == 0:
                rec = self.canon.delete(record_id, actor=self.actor, note="undo: deleted")
            else:
                rec = self.canon.revert(record_id, target, actor=self.actor, note=f"undo to rev {target}")
            self.bible.index(rec)
            self.ledger.append(actor=self.actor, action="revert", record_id=record_id, kind=rec.kind,
                               rev=rec.rev, inputs={"from_rev": current.rev, "to_rev": target},
                               note=f"reverted {record_id} to rev {target}")
            return rec

    def close(self) -> None:
        with self._mutex:
            try:
                self._conn.close()
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


def open_session(project: Project, llm: ChatModel, *, targets: Targets | None = None,
                 actor: str = "human") -> DirectorSession:
    """A session with the backends the project's settings name ([painter] in project.toml)."""
    from tools.backends.factory import animator_from_settings, painter_from_settings, painter_settings

    section = project.settings.get("painter")
    _, candidates, options = painter_settings(section)
    painter = painter_from_settings(section)
    from agent.voices import VoiceBackends

    voice = dict(project.settings.get("voice", {}))
    return DirectorSession(project, llm, targets=targets, actor=actor, painter=painter,
                           candidates=candidates, loras=dict(options.get("loras", {})),
                           voices=VoiceBackends(voice.get("openai")),
                           animator=animator_from_settings(project.settings.get("motion")))
