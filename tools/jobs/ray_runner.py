"""Jobs on a Ray cluster: one actor per model role and slot, each loading its pipeline once.

``[jobs] backend = "ray"`` with ``address = "auto"`` (the cluster `ray start --head` started on this
machine), ``"ray://head:10001"`` (Ray Client to a remote head) or ``"local"`` (a one-machine cluster
started here). A role with ``num_gpus`` (painter, image-to-video) gets one actor per GPU in the
cluster, each created with ``num_gpus=1``, so N GPUs draw N panels at a time with one pipeline load
per GPU; TTS and CPU roles get CPU actors (``[jobs.actors]`` overrides the counts).

Actors never see the project folder: the driver (the studio) sends each job's input files as bytes
and writes the files the actor returns into the project (`RunnerCore._land`). Retries belong to the
driver, not to Ray: actors are created with ``max_restarts=0`` and ``max_task_retries=0`` (at most
once per attempt), and when an actor dies mid-job (``RayActorError``: killed, out of memory, its node
lost) the driver kills the handle, starts a fresh actor for that slot and runs the job again, up to
the role's ``max_attempts``. Only the driver writes results, once per finished key.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from memory.errors import BackendError
from memory.project import Project
from tools.jobs import (
    LANES,
    JobCancelled,
    JobSpecError,
    Registry,
    Role,
    WorkContext,
    WorkerLostError,
    WorkOutput,
)
from tools.jobs.core import RunnerCore, _Job

log = logging.getLogger(__name__)

RAY_HINT = "install it with `.venv/bin/pip install 'ray==2.60.0'` (or `pip install storyreel[jobs]`)"


class _RoleActor:
    """Runs inside a Ray worker process: builds the role's backend once, then runs jobs one by one.

    Created with ``max_concurrency=2`` so `progress` and `cancel` are answered while `run` works.
    """

    def __init__(self, role_name: str, factory: Callable[[], Any]) -> None:
        self.role_name = role_name
        self._work = factory()
        self._progress: dict[str, tuple[float, str]] = {}
        self._cancelled: set[str] = set()

    def run(self, job_id: str, attempt: int, payload: dict[str, Any], inputs: dict[str, bytes]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix=f"storyreel-inputs-{job_id}-") as folder:
            local: dict[str, Path] = {}
            for rel, data in inputs.items():
                path = Path(folder) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                local[rel] = path

            def report(fraction: float, message: str) -> None:
                self._progress[job_id] = (fraction, message)

            ctx = WorkContext(job_id=job_id, attempt=attempt, inputs=local, report=report,
                              cancelled=lambda: job_id in self._cancelled)
            try:
                output = self._work(payload, ctx)
            finally:
                ctx.close()
                self._progress.pop(job_id, None)
                self._cancelled.discard(job_id)
        if not isinstance(output, WorkOutput):
            raise BackendError(f"the {self.role_name!r} work returned {type(output).__name__}, not WorkOutput")
        return {"files": {name: bytes(data) for name, data in output.files.items()}, "data": output.data}

    def progress(self, job_id: str) -> tuple[float, str] | None:
        return self._progress.get(job_id)

    def cancel(self, job_id: str) -> None:
        self._cancelled.add(job_id)

    def pid(self) -> int:
        return os.getpid()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendError(f"[jobs] backend = \"ray\" needs the `ray` package, which is not installed; "
                           f"{RAY_HINT}") from exc
    return ray


class RayJobRunner(RunnerCore):
    """`JobRunner` on Ray actors (see the module docstring).

    `actors`: actors per role (e.g. {"painter": 4}); `lanes`: the fallback count for roles without a
    GPU (as in-process); `poll_s`: how often the driver asks a running actor for its progress;
    `cancel_grace_s`: how long a cancelled job may run on (work that reports no progress, such as
    one long pipeline call) before its actor is killed and replaced (its backend loads again).
    """

    def __init__(self, project: Project, registry: Registry, *, address: str = "auto",
                 lanes: Mapping[str, int] | None = None, actors: Mapping[str, int] | None = None,
                 poll_s: float = 0.05, cancel_grace_s: float = 10.0) -> None:
        ray = _import_ray()
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                ray.init(address=None if address == "local" else address, include_dashboard=False,
                         log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BackendError(
                    f"cannot reach the Ray cluster at [jobs] address = {address!r} ({exc}); start one with "
                    "`ray start --head` (and `ray start --address HEAD:6379` on each GPU host), or set "
                    "address = \"local\" to start one on this machine"
                ) from exc
            self._owns_ray = True
        self._gpus = float(ray.cluster_resources().get("GPU", 0))
        self.lanes = {lane: dict(lanes or {}).get(lane, 1) for lane in LANES}
        self.actor_counts = dict(actors or {})
        for role_name, count in self.actor_counts.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise JobSpecError(f"actors for role {role_name!r} = {count!r}; use a whole number of 1 or more")
        self._poll_s = poll_s
        self._cancel_grace_s = cancel_grace_s
        self._actors: dict[tuple[str, int], Any] = {}
        self._running: dict[str, Any] = {}       # job id -> the actor running it
        self._actor_lock = threading.Lock()
        super().__init__(project, registry)

    # ----------------------------------------------------------------- RunnerCore hooks

    def _queue_name(self, role: str) -> str:
        return self.registry.get(role).name

    def _slot_count(self, queue_name: str) -> int:
        role = self.registry.get(queue_name)
        self._gpus = float(self._ray.cluster_resources().get("GPU", 0))   # hosts may have joined since
        if queue_name in self.actor_counts:
            return self.actor_counts[queue_name]
        if role.num_gpus and self._gpus >= 1:
            return max(1, int(self._gpus // role.num_gpus))
        return self.lanes[role.lane]

    def _new_actor(self, role: Role) -> Any:
        actor_class = self._ray.remote(_RoleActor)
        return actor_class.options(
            num_gpus=role.num_gpus if self._gpus >= role.num_gpus > 0 else 0,
            num_cpus=role.num_cpus,
            max_concurrency=2,          # run + progress/cancel probes
            max_restarts=0,             # the driver replaces a dead actor and retries the job itself
            max_task_retries=0,
        ).remote(role.name, role.factory)

    def _actor(self, role: Role, slot: int) -> tuple[Any, bool]:
        """The slot's actor, and whether it was just created (its backend is still loading)."""
        with self._actor_lock:
            handle = self._actors.get((role.name, slot))
            if handle is not None:
                return handle, False
            handle = self._actors[(role.name, slot)] = self._new_actor(role)
            return handle, True

    def _drop_actor(self, role: Role, slot: int, handle: Any) -> None:
        with self._actor_lock:
            if self._actors.get((role.name, slot)) is handle:
                del self._actors[(role.name, slot)]
        self._kill(handle)

    def _kill(self, handle: Any) -> None:
        try:
            self._ray.kill(handle, no_restart=True)
        except Exception:  # already gone, or the cluster is: nothing left to release
            log.warning("could not kill a Ray actor; it may be gone already", exc_info=True)

    def _execute(self, queue_name: str, slot: int, job: _Job, report: Callable[[float, str], None],
                 cancelled: Callable[[], bool]) -> WorkOutput:
        ray = self._ray
        role = self.registry.get(job.spec.role)
        inputs = {rel: self.project.resolve(rel).read_bytes() for rel in job.spec.inputs}
        handle, created = self._actor(role, slot)
        if created:
            report(0.0, f"starting a Ray worker for {role.name} (loads its backend once)")
        with self._actor_lock:
            self._running[job.id] = handle
        if cancelled():
            handle.cancel.remote(job.id)
        ref = handle.run.remote(job.id, job.attempts, dict(job.spec.payload), inputs)
        probe = None
        last = None
        try:
            cancel_seen = None
            while True:
                ready, _ = ray.wait([ref], timeout=self._poll_s)
                if ready:
                    break
                if cancelled():
                    cancel_seen = cancel_seen or time.monotonic()
                    if time.monotonic() - cancel_seen > self._cancel_grace_s:
                        self._drop_actor(role, slot, handle)        # the next job gets a fresh actor
                        raise JobCancelled(f"job {job.id} was cancelled; its {role.name} actor did not stop "
                                           f"within {self._cancel_grace_s:g} s and was replaced")
                if probe is None:
                    probe = handle.progress.remote(job.id)
                    continue
                done, _ = ray.wait([probe], timeout=0)
                if done:
                    try:
                        value = ray.get(probe)
                    except ray.exceptions.RayError:
                        value = None          # the actor died: `ref` says how
                    probe = None
                    if value is not None and tuple(value) != last:
                        last = tuple(value)
                        report(float(value[0]), str(value[1]))
            reply = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            self._drop_actor(role, slot, handle)
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            if getattr(exc, "actor_init_failed", False):      # the factory raised: a retry would too
                raise BackendError(f"building the {role.name!r} backend on a Ray worker failed: "
                                   f"{lines[-1][:500]}") from exc
            reason = lines[0][:200] + (f" ({lines[-1][:200]})" if len(lines) > 1 else "")
            raise WorkerLostError(f"the Ray actor for {role.name!r} died during job {job.id} "
                                  f"(attempt {job.attempts}): {reason}") from exc
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise BackendError(f"the {role.name!r} work failed on Ray: {str(exc).strip()[:500]}") from exc
        finally:
            with self._actor_lock:
                self._running.pop(job.id, None)
        return WorkOutput(files=reply["files"], data=reply["data"])

    def _on_cancel_running(self, job: _Job) -> None:
        with self._actor_lock:
            handle = self._running.get(job.id)
        if handle is not None:
            handle.cancel.remote(job.id)

    # ----------------------------------------------------------------- extras

    def actor_for(self, job_id: str) -> Any:
        """The Ray actor handle running `job_id` now (None when it is not running); for tests and ops."""
        with self._actor_lock:
            return self._running.get(job_id)

    def close(self) -> None:
        super().close()
        with self._actor_lock:
            handles = list(self._actors.values())
            self._actors.clear()
        for handle in handles:
            self._kill(handle)
        if self._owns_ray:
            self._ray.shutdown()
