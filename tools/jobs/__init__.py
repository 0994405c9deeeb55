"""Heavy generation as jobs, behind one `JobRunner` Protocol.

A caller (a graph node, the storyboard's "draft all" button, `storyreel make`) describes the work as
a `JobSpec` (a role such as "painter", a JSON-able payload, the model id), submits it and gets a job
id back at once; the work runs elsewhere (in-process lanes, or Ray actors) and its files land in the
project, so no costly work happens under the session lock. The spec's `key` is a content hash of
role + payload + model + inputs: the same inputs give the same key, and a finished key is never
recomputed.

Work functions are registered per role (`Role`, `Registry`): a factory builds the backend once per
worker (thread or actor) and returns ``work(payload, ctx) -> WorkOutput``. Workers get their input
files and hand back their output files as bytes (`WorkOutput.files`); the runner, on the project's
side, writes them atomically under ``assets/jobs/<role>/<key[:16]>/``, so a worker never needs the
project folder.

project.toml:
    [jobs]
    backend = "inprocess"        # inprocess (default) | ray
    address = "auto"             # ray: "auto" (a cluster started with `ray start`), "ray://host:10001",
                                 #      or "local" (start one on this machine)
    [jobs.lanes]                 # in-process: concurrent jobs per lane (default 1 each)
    gpu = 1                      # painter, i2v
    tts = 1
    cpu = 1                      # ffmpeg, previews
    [jobs.actors]                # ray: actors per role (default: one per GPU for GPU roles, else the lane's)
    painter = 4
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from memory.errors import BackendError, InputError, StoryreelError

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
JOB_STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
LANES: tuple[str, ...] = ("gpu", "tts", "cpu")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


# --------------------------------------------------------------------------- errors


class JobError(StoryreelError):
    """A job could not be submitted, found, or its result read."""


class JobSpecError(InputError):
    """A job spec with a bad role, payload, model or input path."""


class JobNotFoundError(JobError):
    """A job id this runner never issued."""


class JobNotReadyError(JobError):
    """The result of a job that is still queued or running, or that failed or was cancelled."""


class JobCancelled(JobError):
    """Raised inside a work function (by `WorkContext.progress`) when its job was cancelled."""


class WorkerLostError(BackendError):
    """The worker running a job died (actor killed, process crashed); the job is retried elsewhere."""


# --------------------------------------------------------------------------- the job spec


def _canonical_json(value: Any, where: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JobSpecError(
            f"{where} {value!r:.200} is not JSON ({exc}); use text, numbers, true/false, lists and dicts "
            "with text keys (paths as project-relative strings)"
        ) from exc


@dataclass(frozen=True, eq=False)
class JobSpec:
    """What to compute. `payload` must be JSON (it is stored in the project and sent to workers).

    `inputs` are project-relative files the work reads (a reference sheet, a panel); they are shipped
    to the worker as bytes. Assets are versioned (never overwritten), so their paths identify their
    content and are part of the key. `label` is what the card shows ("panel candidates for shot 4");
    it is not part of the key.
    """

    role: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""
    inputs: tuple[str, ...] = ()
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not _NAME.fullmatch(self.role):
            raise JobSpecError(f"job role {self.role!r} must be 1-40 lowercase letters, digits, '_' or '-', "
                               "e.g. 'painter'")
        if not isinstance(self.payload, Mapping):
            raise JobSpecError(f"job payload for role {self.role!r} must be a dict, got "
                               f"{type(self.payload).__name__}")
        if not isinstance(self.model, str):
            raise JobSpecError(f"job model {self.model!r} must be text (the model id, e.g. 'animatic')")
        if isinstance(self.inputs, str) or not all(isinstance(p, str) for p in self.inputs):
            raise JobSpecError(f"job inputs {self.inputs!r} must be a list of project-relative paths")
        for rel in self.inputs:
            if not rel or rel.startswith("/") or ".." in Path(rel).parts or "\x00" in rel:
                raise JobSpecError(f"job input {rel!r} must be a path relative to the project without '..'")
        payload = json.loads(_canonical_json(dict(self.payload), f"job payload for role {self.role!r}"))
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "inputs", tuple(self.inputs))

    @property
    def key(self) -> str:
        """Content hash of role, model, payload and inputs (sha256 hex)."""
        text = _canonical_json({"role": self.role, "model": self.model, "payload": self.payload,
                                "inputs": list(self.inputs)}, "job spec")
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        return _canonical_json({"role": self.role, "model": self.model, "payload": self.payload,
                                "inputs": list(self.inputs), "label": self.label}, "job spec")

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        data = json.loads(text)
        return cls(role=data["role"], payload=data["payload"], model=data.get("model", ""),
                   inputs=tuple(data.get("inputs", ())), label=data.get("label", ""))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobSpec) and other.key == self.key and other.label == self.label

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    key: str
    role: str
    label: str
    state: JobState
    progress: float          # 0..1
    message: str             # "step 2/4", the failure reason, "cancelling"
    elapsed_s: float         # since the job started running (0 while queued)
    attempts: int            # how many times a worker started it
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass(frozen=True)
class JobResult:
    """A finished job: its files as project-relative paths (by the names the work gave them)."""

    job_id: str
    key: str
    files: dict[str, str]
    data: dict[str, Any]


@dataclass(frozen=True)
class JobEvent:
    """Sent to subscribers on every state change and progress report."""

    job_id: str
    key: str
    role: str
    state: JobState
    progress: float
    message: str


# --------------------------------------------------------------------------- work functions


@dataclass
class WorkOutput:
    """What a work function returns: files by name (bytes) and JSON data that may name them."""

    files: dict[str, bytes] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, folder: Path, data: dict[str, Any] | None = None) -> WorkOutput:
        """Every file under `folder`, named by its posix path relative to it."""
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p.read_bytes()
                 for p in sorted(folder.rglob("*")) if p.is_file()}
        return cls(files=files, data=dict(data or {}))


class WorkContext:
    """Handed to a work function: progress, cancellation, a scratch folder, the job's input files."""

    def __init__(self, *, job_id: str, attempt: int, inputs: Mapping[str, Path],
                 report: Callable[[float, str], None], cancelled: Callable[[], bool]) -> None:
        self.job_id = job_id
        self.attempt = attempt           # 1 on the first run, 2 after a lost worker or a retry...
        self._inputs = dict(inputs)
        self._report = report
        self._cancelled = cancelled
        self._scratch: tempfile.TemporaryDirectory | None = None

    @property
    def scratch(self) -> Path:
        """A private temporary folder, removed after the job."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix=f"storyreel-job-{self.job_id}-")
        return Path(self._scratch.name)

    def input(self, rel: str) -> Path:
        """The local path of one of the spec's `inputs`."""
        try:
            return self._inputs[rel]
        except KeyError:
            raise JobSpecError(f"job {self.job_id} reads {rel!r}, which is not among its inputs "
                               f"{sorted(self._inputs)}; add it to JobSpec.inputs") from None

    @property
    def cancelled(self) -> bool:
        return self._cancelled()

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1); raises `JobCancelled` when the job was cancelled, so work stops here."""
        if self._cancelled():
            raise JobCancelled(f"job {self.job_id} was cancelled")
        fraction = float(fraction)
        self._report(0.0 if math.isnan(fraction) else max(0.0, min(1.0, fraction)), str(message))

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


WorkFn = Callable[[dict[str, Any], WorkContext], WorkOutput]


@dataclass(frozen=True)
class Role:
    """A model role: `factory()` builds its backend once per worker and returns the work function.

    For Ray the factory is pickled to the actors: use a module-level function (or a
    `functools.partial` of one), not a lambda over local state you expect to share.
    """

    name: str
    factory: Callable[[], WorkFn]
    lane: str = "cpu"              # gpu | tts | cpu (in-process concurrency)
    num_gpus: float = 0.0          # per Ray actor, used when the cluster has GPUs
    num_cpus: float = 1.0          # per Ray actor
    max_attempts: int = 3          # runs before a job whose worker keeps dying fails

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise JobSpecError(f"role name {self.name!r} must be lowercase letters, digits, '_' or '-'")
        if self.lane not in LANES:
            raise JobSpecError(f"role {self.name!r} lane {self.lane!r} is unknown; use one of {', '.join(LANES)}")
        if not callable(self.factory):
            raise JobSpecError(f"role {self.name!r} factory {self.factory!r} is not callable")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise JobSpecError(f"role {self.name!r} max_attempts = {self.max_attempts!r}; use 1 or more")


class Registry:
    """role name -> Role. The session builds one from the project's painter/voice settings."""

    def __init__(self, roles: tuple[Role, ...] | list[Role] = ()) -> None:
        self._roles: dict[str, Role] = {}
        for role in roles:
            self.register(role)

    def register(self, role: Role) -> None:
        self._roles[role.name] = role

    def get(self, name: str) -> Role:
        try:
            return self._roles[name]
        except KeyError:
            raise JobSpecError(f"no work is registered for job role {name!r}; registered: "
                               f"{', '.join(sorted(self._roles)) or 'none'}") from None

    def names(self) -> list[str]:
        return sorted(self._roles)


# --------------------------------------------------------------------------- the runner contract


@runtime_checkable
class JobRunner(Protocol):
    def submit(self, spec: JobSpec) -> str:
        """Queue `spec`; returns its job id at once. A spec whose key is done or active returns that job."""
        ...

    def status(self, job_id: str) -> JobStatus: ...

    def result(self, job_id: str) -> JobResult:
        """The files of a done job; `JobNotReadyError` (with the reason) otherwise."""
        ...

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when it had already finished."""
        ...

    def retry(self, job_id: str) -> str:
        """Queue a failed or cancelled job again (same id)."""
        ...

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call `callback` (from a worker thread) on every event; returns the unsubscribe function."""
        ...

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        """Block until the job is no longer active (or `timeout` seconds); returns its status."""
        ...

    def jobs(self, states: tuple[str, ...] = JOB_STATES) -> list[JobStatus]: ...

    def close(self) -> None: ...


def has_role(runner: Any, role: str) -> bool:
    """Whether `runner` (None, or a runner with a `registry`) has work registered for `role`:
    a kind drafts as jobs only what its runner can run, and makes the rest in the step."""
    registry = getattr(runner, "registry", None)
    return runner is not None and registry is not None and role in registry.names()


def find_job(runner: Any, key: str) -> JobStatus | None:
    """The runner's newest job with content key `key`, or None (also for a runner without `find`)."""
    finder = getattr(runner, "find", None)
    return finder(key) if callable(finder) else None


def jobs_settings(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a project's [jobs] table: backend, address, lanes, actors (see the module docstring)."""
    section = dict(section or {})
    backend = section.pop("backend", "inprocess")
    if backend not in ("inprocess", "ray"):
        raise InputError(f"[jobs] backend = {backend!r} is unknown; use \"inprocess\" or \"ray\"")
    address = section.pop("address", "auto")
    if not isinstance(address, str) or not (address in ("auto", "local") or re.fullmatch(r"(ray://)?[\w.-]+:\d+", address)):
        raise InputError(f"[jobs] address = {address!r}; use \"auto\", \"local\" or \"ray://HOST:10001\"")
    lanes = dict(section.pop("lanes", {}) or {})
    for lane, count in lanes.items():
        if lane not in LANES:
            raise InputError(f"[jobs.lanes] {lane} is not a lane; use {', '.join(LANES)}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 64:
            raise InputError(f"[jobs.lanes] {lane} = {count!r}; use a whole number from 1 to 64")
    actors = dict(section.pop("actors", {}) or {})
    for role, count in actors.items():
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 256:
            raise InputError(f"[jobs.actors] {role} = {count!r}; use a whole number from 1 to 256")
    if section:
        raise InputError(f"[jobs] does not take {sorted(section)}; it takes backend, address, lanes, actors")
    return {"backend": backend, "address": address, "lanes": {lane: lanes.get(lane, 1) for lane in LANES},
            "actors": actors}


def runner_from_settings(project: Any, registry: Registry, *, backend: str | None = None) -> JobRunner:
    """The runner a project's [jobs] table names (`backend` overrides it, e.g. `make --jobs ray`)."""
    section = dict((project.settings or {}).get("jobs") or {})
    settings = jobs_settings(section if backend is None else {**section, "backend": backend})
    if settings["backend"] == "ray":
        from tools.jobs.ray_runner import RayJobRunner

        return RayJobRunner(project, registry, address=settings["address"], lanes=settings["lanes"],
                            actors=settings["actors"])
    from tools.jobs.inprocess import InProcessJobRunner

    return InProcessJobRunner(project, registry, lanes=settings["lanes"])
