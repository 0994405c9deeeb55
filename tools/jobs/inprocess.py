"""The embedded job runner: worker threads in this process, one queue per lane.

Lanes (gpu: painter and image-to-video; tts; cpu: ffmpeg and previews) each get `lanes[lane]` worker
threads (default 1: a 2-core laptop draws one panel at a time while a take is voiced). Each worker
thread builds a role's backend once, the first time it runs a job of that role, and keeps it, so a
pipeline loads once per worker. Jobs live in ``state/jobs.sqlite``; a restart queues again whatever
was queued or running.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from memory.project import Project
from tools.jobs import LANES, JobSpecError, Registry, WorkContext, WorkFn, WorkOutput
from tools.jobs.core import RunnerCore, _Job


class InProcessJobRunner(RunnerCore):
    """`JobRunner` on threads. `lanes`: concurrent jobs per lane, e.g. {"gpu": 1, "tts": 1, "cpu": 2}."""

    def __init__(self, project: Project, registry: Registry, *, lanes: Mapping[str, int] | None = None) -> None:
        lanes = dict(lanes or {})
        for lane, count in lanes.items():
            if lane not in LANES:
                raise JobSpecError(f"lane {lane!r} is unknown; use one of {', '.join(LANES)}")
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise JobSpecError(f"lane {lane!r} concurrency {count!r} must be a whole number of 1 or more")
        self.lanes = {lane: lanes.get(lane, 1) for lane in LANES}
        self._local = threading.local()            # per worker thread: role -> built work function
        self.builds = 0                            # backends built, all threads together (for tests/bench)
        super().__init__(project, registry)

    def _queue_name(self, role: str) -> str:
        return self.registry.get(role).lane

    def _slot_count(self, queue_name: str) -> int:
        return self.lanes[queue_name]

    def _work_for(self, role_name: str) -> WorkFn:
        built = getattr(self._local, "built", None)
        if built is None:
            built = self._local.built = {}
        if role_name not in built:
            built[role_name] = self.registry.get(role_name).factory()
            with self._lock:
                self.builds += 1
        return built[role_name]

    def _execute(self, queue_name: str, slot: int, job: _Job, report: Callable[[float, str], None],
                 cancelled: Callable[[], bool]) -> WorkOutput:
        work = self._work_for(job.spec.role)
        inputs = {rel: self.project.resolve(rel) for rel in job.spec.inputs}
        ctx = WorkContext(job_id=job.id, attempt=job.attempts, inputs=inputs, report=report, cancelled=cancelled)
        try:
            return work(dict(job.spec.payload), ctx)
        finally:
            ctx.close()
