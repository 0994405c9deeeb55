"""What both runners share: the jobs table in the project, queues, dedupe by key, landing results.

A runner subclass decides which queue a role uses (`_queue_name`), how many slots serve a queue
(`_slot_count`) and how a slot runs one job (`_execute`); everything else (persisting every state
change, resuming the queue after a restart, writing results exactly once, events) lives here.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from memory.errors import StoryreelError
from memory.project import Project, fsync_dir
from tools.jobs import (
    ACTIVE_STATES,
    JOB_STATES,
    JobCancelled,
    JobError,
    JobEvent,
    JobNotFoundError,
    JobNotReadyError,
    JobResult,
    JobSpec,
    JobSpecError,
    JobStatus,
    Registry,
    WorkerLostError,
    WorkOutput,
)

log = logging.getLogger(__name__)

JOBS_DB = "state/jobs.sqlite"
RESULTS_DIR = "assets/jobs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    key TEXT NOT NULL,
    role TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    files TEXT,
    data TEXT,
    submitted REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs (key);
"""


@dataclass
class _Job:
    id: str
    spec: JobSpec
    key: str
    state: str = "queued"
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    attempts: int = 0
    files: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False

    def status(self) -> JobStatus:
        if self.started is None:
            elapsed = 0.0
        else:
            elapsed = (self.finished or time.monotonic()) - self.started
        return JobStatus(job_id=self.id, key=self.key, role=self.spec.role, label=self.spec.label,
                         state=self.state, progress=self.progress, message=self.message,  # type: ignore[arg-type]
                         elapsed_s=round(max(0.0, elapsed), 3), attempts=self.attempts, error=self.error)


class JobStore:
    """The jobs table (``state/jobs.sqlite``): one row per job, written on every state change.

    WAL with synchronous=NORMAL: a state change costs no fsync, and a crash loses at most the last
    few changes, which the restart turns back into queued jobs (results are idempotent by key).
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._closed = False

    def insert(self, job: _Job, submitted: float) -> None:
        with self._lock:
            if self._closed:
                return
            self._db.execute("INSERT INTO jobs (id, key, role, spec, state, attempts, submitted) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (job.id, job.key, job.spec.role, job.spec.to_json(), job.state, job.attempts,
                              submitted))

    def update(self, job: _Job) -> None:
        """Persist `job`'s state; after `close` (a job outliving the runner) nothing is written, and
        the next start finds the job still running and queues it again."""
        with self._lock:
            if self._closed:
                return
            self._db.execute("UPDATE jobs SET state=?, error=?, attempts=?, files=?, data=?, finished=? "
                             "WHERE id=?",
                             (job.state, job.error, job.attempts,
                              json.dumps(job.files) if job.state == "done" else None,
                              json.dumps(job.data) if job.state == "done" else None,
                              time.time() if job.state not in ACTIVE_STATES else None, job.id))

    def load(self) -> list[_Job]:
        with self._lock:
            rows = self._db.execute("SELECT id, key, spec, state, error, attempts, files, data FROM jobs "
                                    "ORDER BY seq").fetchall()
        jobs = []
        for job_id, key, spec, state, error, attempts, files, data in rows:
            try:
                job = _Job(id=job_id, spec=JobSpec.from_json(spec), key=key, state=state, error=error,
                           attempts=attempts, files=json.loads(files) if files else {},
                           data=json.loads(data) if data else {})
            except (ValueError, KeyError, StoryreelError) as exc:   # a hand-edited row: skip it, say so
                log.warning("jobs table row %s is unreadable (%s); skipped", job_id, exc)
                continue
            if job.state not in JOB_STATES:
                job.state = "queued"
            jobs.append(job)
        return jobs

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()


def _write_durably(files: dict[Path, bytes], top: Path) -> None:
    """`atomic_write_bytes` for a batch: each file replaced atomically (temp file, fsync, rename),
    then each folder written to, or holding a folder created here (below `top`), fsynced once rather
    than once per file: a panel job brings a dozen layers and variants, and on a busy disk every fsync
    costs milliseconds."""
    folders: set[Path] = set()
    for path, data in files.items():
        new = [p for p in (path.parent, *path.parent.parents) if top in p.parents and not p.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        folders.update(p.parent for p in new)
        folders.add(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(folder)


class _Queue:
    """FIFO of job ids with blocking get; `requeue_front` puts a lost worker's job back first."""

    def __init__(self) -> None:
        self._items: deque[str] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, job_id: str, front: bool = False) -> None:
        with self._cond:
            (self._items.appendleft if front else self._items.append)(job_id)
            self._cond.notify()

    def get(self) -> str | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._closed:            # what is left stays queued in the jobs table for the next start
                return None
            return self._items.popleft()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class RunnerCore:
    """The shared half of a JobRunner; see the module docstring for what a subclass adds."""

    def __init__(self, project: Project, registry: Registry) -> None:
        self.project = project
        self.registry = registry
        self._lock = threading.RLock()
        self._done_cond = threading.Condition(self._lock)
        self._jobs: dict[str, _Job] = {}
        self._by_key: dict[str, str] = {}          # key -> the newest job id with that key
        self._queues: dict[str, _Queue] = {}
        self._threads: list[threading.Thread] = []
        self._subscribers: list[Callable[[JobEvent], None]] = []
        self._closed = False
        (project.root / "state").mkdir(exist_ok=True)
        self._store = JobStore(project.resolve(JOBS_DB))
        self._resume()

    # ----------------------------------------------------------------- subclass hooks

    def _queue_name(self, role: str) -> str:
        raise NotImplementedError

    def _slot_count(self, queue_name: str) -> int:
        raise NotImplementedError

    def _execute(self, queue_name: str, slot: int, job: _Job, report: Callable[[float, str], None],
                 cancelled: Callable[[], bool]) -> WorkOutput:
        """Run `job` on slot `slot`; raise `WorkerLostError` when the worker died under it."""
        raise NotImplementedError

    def _on_cancel_running(self, job: _Job) -> None:
        """A running job was cancelled (the work also sees it at its next progress report)."""

    # ----------------------------------------------------------------- the Protocol

    def submit(self, spec: JobSpec) -> str:
        if not isinstance(spec, JobSpec):
            raise JobError(f"submit takes a JobSpec, got {type(spec).__name__}: {spec!r:.100}")
        role = self.registry.get(spec.role)          # JobSpecError naming the registered roles
        for rel in spec.inputs:                      # inside the project (resolver), and there
            if not self.project.resolve(rel).is_file():
                raise JobSpecError(f"job input {rel!r} is not a file in the project {self.project.root}; "
                                   "accept or upload it first")
        key = spec.key
        with self._lock:
            if self._closed:
                raise JobError("this job runner is closed; open the project again to submit jobs")
            existing = self._jobs.get(self._by_key.get(key, ""))
            if existing is not None:
                if existing.state in ACTIVE_STATES:
                    return existing.id
                if existing.state == "done" and self._files_present(existing):
                    return existing.id
                if existing.state == "done":          # its files were removed (doctor, by hand): redo
                    self._requeue(existing, front=False)
                    return existing.id
            job = _Job(id=uuid.uuid4().hex[:12], spec=spec, key=key)
            self._jobs[job.id] = job
            self._by_key[key] = job.id
            self._store.insert(job, time.time())
            self._enqueue(job.id, self._queue_name(role.name))
        self._emit(job)
        return job.id

    def status(self, job_id: str) -> JobStatus:
        job = self._get(job_id)
        with self._lock:
            return job.status()

    def result(self, job_id: str) -> JobResult:
        job = self._get(job_id)
        with self._lock:
            if job.state != "done":
                reason = f": {job.error}" if job.error else ""
                raise JobNotReadyError(f"job {job_id} ({job.spec.label or job.spec.role}) is {job.state}"
                                       f"{reason}; wait for it, or retry it if it failed")
            return JobResult(job_id=job.id, key=job.key, files=dict(job.files), data=dict(job.data))

    def cancel(self, job_id: str) -> bool:
        job = self._get(job_id)
        with self._lock:
            if job.state == "queued":
                job.state, job.message, job.cancel_requested = "cancelled", "cancelled before it started", True
                self._finish(job)
            elif job.state == "running":
                if job.cancel_requested:
                    return True
                job.cancel_requested, job.message = True, "cancelling"
            else:
                return False
        if job.state == "running":
            self._on_cancel_running(job)
        self._emit(job)
        return True

    def retry(self, job_id: str) -> str:
        job = self._get(job_id)
        with self._lock:
            if job.state not in ("failed", "cancelled"):
                raise JobError(f"job {job_id} is {job.state}; only a failed or cancelled job can be retried")
            self._requeue(job, front=False)
        self._emit(job)
        return job.id

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        job = self._get(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done_cond:
            while job.state in ACTIVE_STATES:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._done_cond.wait(left if left is not None else 1.0)
        return job.status()

    def find(self, key: str) -> JobStatus | None:
        """The newest job with content key `key` (a spec's `key`), or None: what the storyboard shows
        for an item a batch queued, without submitting anything."""
        with self._lock:
            job = self._jobs.get(self._by_key.get(key, ""))
            return None if job is None else job.status()

    def jobs(self, states: tuple[str, ...] = JOB_STATES) -> list[JobStatus]:
        with self._lock:
            return [job.status() for job in self._jobs.values() if job.state in states]

    def close(self) -> None:
        """Stop taking jobs; running ones finish first. Queued jobs stay queued in the project."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queues = list(self._queues.values())
        for queue in queues:
            queue.close()
        for thread in self._threads:
            thread.join(timeout=30)
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- internals

    def _get(self, job_id: str) -> _Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id!r} in {self.project.root / JOBS_DB}; it may belong to "
                                   "another project")
        return job

    def _resume(self) -> None:
        """Load the jobs table; queued or running jobs (the last run stopped under them) queue again."""
        for job in self._store.load():
            self._jobs[job.id] = job
            self._by_key[job.key] = job.id
        for job in list(self._jobs.values()):
            if job.state in ACTIVE_STATES:
                try:
                    queue = self._queue_name(self.registry.get(job.spec.role).name)
                except StoryreelError as exc:
                    job.state, job.error = "failed", str(exc)
                    job.message = job.error
                    self._store.update(job)
                    continue
                job.state, job.progress, job.message, job.started = "queued", 0.0, "resumed after a restart", None
                self._store.update(job)
                self._enqueue(job.id, queue)

    def _requeue(self, job: _Job, front: bool) -> None:
        job.state, job.progress, job.error, job.cancel_requested = "queued", 0.0, None, False
        job.message, job.started, job.finished, job.files, job.data = "", None, None, {}, {}
        self._store.update(job)
        self._enqueue(job.id, self._queue_name(job.spec.role), front=front)

    def _enqueue(self, job_id: str, queue_name: str, front: bool = False) -> None:
        with self._lock:
            queue = self._queues.get(queue_name)
            if queue is None:
                queue = self._queues[queue_name] = _Queue()
                for slot in range(self._slot_count(queue_name)):
                    thread = threading.Thread(target=self._slot_loop, args=(queue_name, slot, queue),
                                              name=f"jobs-{queue_name}-{slot}", daemon=True)
                    self._threads.append(thread)
                    thread.start()
            queue.put(job_id, front=front)

    def _files_present(self, job: _Job) -> bool:
        return all((self.project.root / rel).is_file() for rel in job.files.values())

    def _slot_loop(self, queue_name: str, slot: int, queue: _Queue) -> None:
        while True:
            job_id = queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs[job_id]
                if job.state != "queued":          # cancelled while queued
                    continue
                job.state, job.progress, job.message = "running", 0.0, ""
                job.started, job.attempts = time.monotonic(), job.attempts + 1
                self._store.update(job)
            self._emit(job)
            self._run_one(queue_name, slot, job, queue)

    def _run_one(self, queue_name: str, slot: int, job: _Job, queue: _Queue) -> None:
        def report(fraction: float, message: str) -> None:
            with self._lock:
                if job.state != "running" or job.cancel_requested:
                    return
                job.progress, job.message = fraction, message
            self._emit(job)

        def cancelled() -> bool:
            return job.cancel_requested

        try:
            output = self._execute(queue_name, slot, job, report, cancelled)
        except JobCancelled:
            self._end(job, "cancelled", "cancelled")
        except WorkerLostError as exc:
            role = self.registry.get(job.spec.role)
            with self._lock:
                retry = not job.cancel_requested and job.attempts < role.max_attempts
                if retry:                          # first in line, on a fresh worker
                    job.state, job.message, job.started = "queued", f"retrying: {exc}", None
                    self._store.update(job)
                    queue.put(job.id, front=True)
            if retry:
                self._emit(job)
            elif job.cancel_requested:
                self._end(job, "cancelled", "cancelled")
            else:
                self._end(job, "failed", f"{exc} (gave up after {job.attempts} attempts)")
        except StoryreelError as exc:
            self._end(job, "failed", str(exc))
        except Exception as exc:  # a bug or an OS error in the work: the card shows it, the runner goes on
            log.exception("job %s (%s) failed", job.id, job.spec.role)
            self._end(job, "failed", f"{type(exc).__name__}: {exc}")
        else:
            if job.cancel_requested:
                self._end(job, "cancelled", "cancelled")
                return
            try:
                files = self._land(job, output)
            except Exception as exc:
                log.exception("job %s: writing its result failed", job.id)
                self._end(job, "failed", f"writing the result failed: {type(exc).__name__}: {exc}")
                return
            with self._lock:
                job.files, job.data = files, dict(output.data)
            self._end(job, "done", "done")

    def _land(self, job: _Job, output: WorkOutput) -> dict[str, str]:
        """Write the output files under assets/jobs/<role>/<key[:16]>/ atomically; return their paths.

        Content-addressed by key, so landing the same key twice (a crash between the write and the
        jobs table update) rewrites the same files and never leaves a second copy. Every name is
        checked (through the project's resolver) before anything is written.
        """
        if not isinstance(output, WorkOutput):
            raise JobError(f"the {job.spec.role!r} work returned {type(output).__name__}, not WorkOutput")
        folder_rel = f"{RESULTS_DIR}/{job.spec.role}/{job.key[:16]}"
        targets: dict[str, Path] = {}
        for name in output.files:
            parts = Path(name).parts if isinstance(name, str) else ()
            if not parts or name.startswith("/") or ".." in parts or "\x00" in name:
                raise JobError(f"the {job.spec.role!r} work named an output file {name!r}; names must be "
                               "relative, without '..'")
            targets[name] = self.project.resolve(f"{folder_rel}/{name}")
        _write_durably({targets[name]: bytes(data) for name, data in output.files.items()},
                       top=self.project.resolve("assets"))
        return {name: self.project.relative(path) for name, path in targets.items()}

    def _end(self, job: _Job, state: str, message: str) -> None:
        with self._lock:
            job.state, job.message = state, message
            job.error = message if state == "failed" else None
            if state == "done":
                job.progress = 1.0
            self._finish(job)
        self._emit(job)

    def _finish(self, job: _Job) -> None:
        job.finished = time.monotonic()
        if job.started is None:
            job.started = job.finished
        self._store.update(job)
        self._done_cond.notify_all()

    def _emit(self, job: _Job) -> None:
        with self._lock:
            event = JobEvent(job_id=job.id, key=job.key, role=job.spec.role, state=job.state,  # type: ignore[arg-type]
                             progress=job.progress, message=job.message)
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a broken listener must not stop the worker; its traceback is logged
                log.exception("job event listener %r failed", callback)
