"""Takes checked by ear in the background: one worker per session hears each take after it is made.

Whisper takes about a second per line on one thread, so it never runs in a graph step (under the
session lock): `propose_take` and `accept_audio` only queue the take here and go on. The worker
loads its `Transcriber` on its first job, transcribes the take's WAV and writes the result beside it,
``take.wav`` -> ``take.check.json`` (an atomic write, so it survives a restart and is never read
half-written). Readers — the card (`card_with_check`), the Voices tab (`take_check_status`),
`storyreel make` (`record_take_checks`) — read that file; the card shows "checking by ear…" until
it is there.

The result is what `tools.take_check.check_take` gives (``heard``, ``wer``, ``flagged``, maybe a
lexicon ``suggestion``) plus the ``line`` and ``language`` it was checked against; a check that
failed stores ``error`` instead. Two markers are never stored: ``{"pending": True}`` (queued or
being heard) and ``{"unavailable": hint}`` (faster-whisper is not installed; the hint says how).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.errors import StoryreelError

if TYPE_CHECKING:
    from agent.context import DirectorContext
    from memory.canon import Canon, Record
    from memory.ledger import Ledger
    from memory.project import Project
    from tools.take_check import Transcriber

log = logging.getLogger(__name__)

#: How long `storyreel make` waits at its end for the checks still queued (seconds).
MAKE_WAIT_S = 300.0


def check_path(wav: Path) -> Path:
    """Where the ear check of ``wav`` lives: ``take.wav`` -> ``take.check.json``."""
    wav = Path(wav)
    return wav.with_name(f"{wav.stem}.check.json")


def read_check(wav: Path) -> dict[str, Any] | None:
    """The stored check of ``wav``; None when there is none (or it is unreadable: checked again)."""
    try:
        value = json.loads(check_path(wav).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and ("heard" in value or "error" in value) else None


def is_result(check: Any) -> bool:
    """A finished check (heard or failed), as opposed to the pending / unavailable markers."""
    return isinstance(check, dict) and ("heard" in check or "error" in check)


@dataclass
class _Job:
    wav: Path
    line: str
    language: str
    names: tuple[str, ...]
    lexicon: dict[str, str]
    also: list[Path] = field(default_factory=list)   # accepted copies of the same recording


class TakeChecks:
    """A single-worker queue of ear checks over one `Transcriber` (loaded by it on first use).

    Nothing here waits for Whisper except `wait` (for `storyreel make`, bounded) and `close`.
    """

    def __init__(self, transcriber: Transcriber) -> None:
        from tools.take_check import INSTALL_HINT

        self.transcriber = transcriber
        available = getattr(transcriber, "is_available", None)
        self.unavailable = "" if available is None or available() else (
            f"takes are not checked by ear: faster-whisper is not installed; to enable it: {INSTALL_HINT}")
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._jobs: dict[Path, _Job] = {}           # queued or being heard, by WAV path
        self._thread: threading.Thread | None = None
        self._closed = False
        self.checked = 0                             # results written (for tests and the bench)

    @property
    def name(self) -> str:
        return str(getattr(self.transcriber, "name", "checker"))

    def _pending(self) -> dict[str, Any]:
        return {"pending": True, "checker": self.name}

    def submit(self, wav: Path, line: str, language: str = "en", *, names: Iterable[str] = (),
               lexicon: dict[str, str] | None = None) -> dict[str, Any]:
        """Queue the check of ``wav`` against ``line`` unless it is stored or queued already; returns
        what the card shows now (the stored result, the pending marker, or the unavailable one)."""
        if self.unavailable:
            return {"unavailable": self.unavailable}
        wav = Path(wav)
        stored = read_check(wav)
        if stored is not None and stored.get("line") == line and stored.get("language") == language:
            return stored
        with self._cond:
            if wav in self._jobs:
                return self._pending()
            if self._closed:
                return {"error": "the session closed before this take was checked; reopen it to check it"}
            job = _Job(wav, str(line), str(language or "en"), tuple(names), dict(lexicon or {}))
            self._jobs[wav] = job
            self._queue.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="take-checks", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return self._pending()

    def status(self, wav: Path) -> dict[str, Any] | None:
        """The stored result of ``wav``, the pending marker while it is queued, else None."""
        wav = Path(wav)
        with self._cond:
            if wav in self._jobs:
                return self._pending()
        return read_check(wav)

    def follow(self, src: Path, dest: Path) -> dict[str, Any] | None:
        """``dest`` is an accepted copy of the recording ``src``: its check is ``src``'s. Returns the
        result when it is there already (copied beside ``dest`` now), else None (written beside
        ``dest`` too when the queued check of ``src`` ends)."""
        src, dest = Path(src), Path(dest)
        with self._cond:
            job = self._jobs.get(src)
            if job is not None:
                job.also.append(dest)
                return None
        result = read_check(src)
        if result is not None:
            _write(dest, result)
        return result

    def wait(self, timeout: float) -> bool:
        """Wait until every queued check is written (at most ``timeout`` seconds); True when done."""
        deadline = time.monotonic() + max(0.0, float(timeout))
        with self._cond:
            while self._jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._jobs)

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking jobs; the one being heard finishes (within ``timeout``: native inference still
        running when the process exits would abort it), queued ones are
        dropped (their takes are checked again when the project is reopened)."""
        with self._cond:
            self._closed = True
            for job in self._queue:
                self._jobs.pop(job.wav, None)
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _work(self) -> None:
        from tools.take_check import check_take

        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
            try:
                result = check_take(self.transcriber, job.wav, job.line, job.language, names=job.names,
                                    lexicon=job.lexicon)
            except StoryreelError as exc:
                result = {"error": str(exc), "checker": self.name}
            except Exception as exc:  # a bug or an OS error in the checker: on the card, the worker goes on
                log.warning("ear check of %s failed", job.wav, exc_info=True)
                result = {"error": f"{type(exc).__name__}: {exc}", "checker": self.name}
            result = {**result, "line": job.line, "language": job.language}
            with self._cond:
                copies = len(job.also)
            for wav in [job.wav, *job.also[:copies]]:
                _write(wav, result)
            with self._cond:
                late = job.also[copies:]     # copies accepted while it was being written
                self._jobs.pop(job.wav, None)
                self.checked += 1
                self._cond.notify_all()
            for wav in late:
                _write(wav, result)


def _write(wav: Path, result: dict[str, Any]) -> None:
    """The result beside ``wav``; nothing when the take's folder is gone (a discarded draft)."""
    from memory.project import atomic_write_text

    if not wav.parent.is_dir():
        return
    try:
        atomic_write_text(check_path(wav), json.dumps(result, ensure_ascii=False, indent=1))
    except (OSError, StoryreelError) as exc:
        log.warning("could not store the ear check of %s: %s", wav, exc)


# ----------------------------------------------------------------------------- glue for the slices


def checks_of(voices: Any) -> TakeChecks | None:
    """The session's background checker: ``voices.checks``; a voices backend that only names a
    ``checker`` (a `Transcriber`) gets one made around it; None: takes are not checked."""
    checks = getattr(voices, "checks", None)
    if checks is None and getattr(voices, "checker", None) is not None:
        checks = TakeChecks(voices.checker)
        try:
            voices.checks = checks
        except AttributeError:
            return checks
    return checks


def _speech_context(canon: Canon) -> tuple[list[str], dict[str, str]]:
    from agent.voices import lexicon

    names = [str(r.data.get("name")) for r in canon.list("character") if r.data.get("name")]
    return names, lexicon(canon)[0]


def submit_check(ctx: DirectorContext, wav: Path, text: str, language: str) -> dict[str, Any] | None:
    """Queue the ear check of a take (never waits); what its card shows now, None without a checker."""
    checks = checks_of(ctx.voices)
    if checks is None:
        return None
    names, entries = _speech_context(ctx.canon)
    return checks.submit(wav, text, language, names=names, lexicon=entries)


def accepted_check(ctx: DirectorContext, src: Path, dest: Path, text: str, language: str, *,
                   upload: bool) -> dict[str, Any] | None:
    """The check to store with an accepted take, if it is finished already (else None: it lands
    beside the accepted WAV when done, and `record_take_checks` / the Voices tab read it there).
    A generated take keeps its draft's check; an upload is queued for its own."""
    checks = checks_of(ctx.voices)
    if checks is None:
        return None
    if upload:
        check = submit_check(ctx, dest, text, language)
    else:
        check = checks.follow(src, dest)
    return check if is_result(check) else None


def card_with_check(request: dict[str, Any] | None, voices: Any, project: Project,
                    canon: Canon) -> dict[str, Any] | None:
    """A take card as the director should see it now: its ``check`` read from beside the take (or
    the pending / unavailable marker). Queues the check when nobody has (the project was reopened
    while a take card was pending). Returns a copy; the checkpointed card is not changed."""
    if not request or request.get("kind") != "take" or not request.get("data"):
        return request
    checks = checks_of(voices)
    data = request["data"]
    candidates = data.get("candidates") or []
    if checks is None or not candidates or not candidates[0].get("path"):
        return request
    try:
        wav = project.resolve(candidates[0]["path"])
    except StoryreelError:
        return request
    check = checks.status(wav)
    if check is None:
        names, entries = _speech_context(canon)
        check = checks.submit(wav, str(data.get("text") or ""), str(data.get("language") or "en"),
                              names=names, lexicon=entries)
    return {**request, "data": {**data, "check": check}}


def take_check_status(take: Record, voices: Any, project: Project, canon: Canon) -> dict[str, Any] | None:
    """The ear check of an accepted take: in its record, beside its WAV, pending, or queued now
    (a take accepted before its check ended, in a session that closed meanwhile)."""
    if is_result(take.data.get("check")):
        return take.data["check"]
    if not take.data.get("path"):
        return None
    try:
        wav = project.resolve(str(take.data.get("path") or ""))
    except StoryreelError:
        return None
    checks = checks_of(voices)
    if checks is None:
        return read_check(wav)
    check = checks.status(wav)
    if check is None and wav.is_file():
        text = str((take.data.get("made_from") or {}).get("text") or "")
        names, entries = _speech_context(canon)
        check = checks.submit(wav, text, str(take.data.get("language") or "en"), names=names, lexicon=entries)
    return check


def check_summary(check: dict[str, Any] | None) -> str:
    """One cell of the Voices tab's takes table."""
    if not check:
        return ""
    if check.get("pending"):
        return "checking by ear…"
    if check.get("unavailable"):
        return "not checked (faster-whisper not installed)"
    if check.get("error"):
        return "check failed"
    mark = "⚠ " if check.get("flagged") else "✓ "
    return f"{mark}WER {float(check.get('wer', 0)):.0%}: {str(check.get('heard', ''))[:40]}"


def record_take_checks(canon: Canon, ledger: Ledger, project: Project, checks: TakeChecks | None, *,
                       actor: str = "auto", timeout: float = MAKE_WAIT_S) -> int:
    """Wait (at most ``timeout`` s) for the queued checks, then write each finished check into its
    accepted take's record that lacks one (a revision logged like any commit). Returns how many."""
    if checks is None:
        return 0
    if not checks.wait(timeout):
        log.warning("ear checks still running after %.0f s; their takes keep them beside the WAV only", timeout)
    written = 0
    for take in canon.list("take"):
        if is_result(take.data.get("check")) or not take.data.get("path"):
            continue
        try:
            result = read_check(project.resolve(str(take.data["path"])))
        except StoryreelError:
            continue
        if result is None:
            continue

        def write(take: Record = take, result: dict[str, Any] = result) -> list[Record]:
            return [canon.upsert("take", {**take.data, "check": result}, actor=actor, record_id=take.id,
                                 note="ear check recorded")]

        op = f"check-{take.id}-{take.rev}"
        canon.commit_proposal(op, write, kind="take", actor=actor, action="edit",
                              note=f"ear check of {take.id}: WER {result.get('wer', '?')}",
                              inputs={"check": result})
        ledger.complete(canon, op)
        written += 1
    return written
