"""Background renders: one episode cut at a time in a worker thread, with progress.

The studio polls the render (`DirectorSession.jobs`), so the chat stays usable while an episode
renders. Model work (painting, voices, image-to-video) runs as jobs of `tools.jobs` instead (its
`JobRunner` Protocol: lanes in-process, or Ray actors).
"""
from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memory.errors import InputError, StoryreelError

Progress = Callable[[float, str], None]


@dataclass
class Job:
    name: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    state: str = "queued"            # queued | running | done | failed
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")


class RenderJobs:
    """Named background jobs in threads (renders); one job of a name at a time."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, name: str, work: Callable[[Progress], Any]) -> Job:
        """Start `work(progress)` in a thread; one job of a name at a time."""
        with self._lock:
            running = self.latest(name)
            if running is not None and running.active:
                raise InputError(f"a {name} job is already running ({running.progress * 100:.0f}%); wait for it")
            job = Job(name=name)
            self._jobs[job.id] = job

        def report(fraction: float, message: str) -> None:
            job.progress, job.message = max(0.0, min(1.0, float(fraction))), message

        def run() -> None:
            job.state = "running"
            try:
                job.result = work(report)
                job.state, job.progress = "done", 1.0
            except StoryreelError as exc:
                job.state, job.error = "failed", str(exc)
            except Exception as exc:  # a bug or an OS error (disk full): shown, with the old output intact
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            finally:
                job.finished = time.time()

        threading.Thread(target=run, name=f"job-{name}-{job.id}", daemon=True).start()
        return job

    def latest(self, name: str) -> Job | None:
        jobs = [j for j in self._jobs.values() if j.name == name]
        return max(jobs, key=lambda j: j.started) if jobs else None

    def wait(self, job: Job, timeout: float = 600.0) -> Job:
        deadline = time.time() + timeout
        while job.active and time.time() < deadline:
            time.sleep(0.05)
        return job
