"""The job runner contract (tools/jobs), once for both backends: in-process lanes and a real local Ray
cluster (slow). Work functions are fakes at the `Role` boundary: a sleeping painter that reports
progress, and a CPU-bound one."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memory.errors import BackendError, InputError, PathOutsideProjectError
from memory.project import create_project, open_project
from tools.jobs import (
    JobEvent,
    JobNotFoundError,
    JobNotReadyError,
    JobRunner,
    JobSpec,
    JobSpecError,
    Registry,
    Role,
    WorkContext,
    WorkOutput,
    jobs_settings,
    runner_from_settings,
)
from tools.jobs.core import JOBS_DB
from tools.jobs.inprocess import InProcessJobRunner

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- fake work functions

_BUILDS = {"n": 0}   # backends built in this process (a Ray actor is its own process)


def sleepy_painter() -> object:
    """A painter that 'loads' once and then sleeps through `steps` steps, reporting each.

    payload: shot, steps, step_s, first_step_s (step time on attempt 1 only), fail_attempts (raise
    BackendError on attempts up to this), bad_name (return a file named so), echo_input (copy that
    input file into the output as echo.bin)."""
    _BUILDS["n"] += 1
    build = _BUILDS["n"]

    def paint(payload: dict, ctx: WorkContext) -> WorkOutput:
        steps = int(payload.get("steps", 2))
        step_s = float(payload.get("first_step_s", payload.get("step_s", 0.01)) if ctx.attempt == 1
                       else payload.get("step_s", 0.01))
        for i in range(steps):
            ctx.progress(i / steps, f"step {i + 1}/{steps}")
            time.sleep(step_s)
        ctx.progress(1.0, "encoding")
        if ctx.attempt <= int(payload.get("fail_attempts", 0)):
            raise BackendError(f"CUDA out of memory on attempt {ctx.attempt}; lower [painter] width")
        body = json.dumps({"shot": payload["shot"], "pid": os.getpid(), "attempt": ctx.attempt}).encode()
        name = payload.get("bad_name", "panel.png")
        files = {name: body, "layers/backdrop.png": b"backdrop"}
        if "echo_input" in payload:                  # the worker reads an input file the runner shipped
            files["echo.bin"] = ctx.input(payload["echo_input"]).read_bytes()
        return WorkOutput(files=files,
                          data={"image": name, "pid": os.getpid(), "build": build, "attempt": ctx.attempt})
    return paint


def cpu_burner() -> object:
    """CPU-bound fake: `n` rounds of integer arithmetic."""
    def burn(payload: dict, ctx: WorkContext) -> WorkOutput:
        total = 0
        for i in range(int(payload["n"])):
            total = (total * 31 + i) % 1_000_003
        return WorkOutput(files={"sum.txt": str(total).encode()}, data={"sum": total})
    return burn


def unloadable_painter() -> object:
    raise BackendError("cannot load /models/nope.safetensors; check [painter] model")


def stubborn() -> object:
    """One long call that never reports progress (a pipeline without a step callback)."""
    def work(payload: dict, ctx: WorkContext) -> WorkOutput:
        time.sleep(float(payload["sleep"]))
        return WorkOutput(files={"clip.txt": b"clip"}, data={"pid": os.getpid()})
    return work


def registry() -> Registry:
    return Registry([Role("painter", sleepy_painter, lane="gpu", num_gpus=1),
                     Role("burn", cpu_burner, lane="cpu"),
                     Role("stubborn", stubborn, lane="tts"),
                     Role("broken", unloadable_painter, lane="gpu")])


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=100 * 1024 * 1024,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    yield ray
    ray.shutdown()


@pytest.fixture(params=["inprocess", pytest.param("ray", marks=pytest.mark.slow)])
def backend(request):
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return request.param


@pytest.fixture
def project(tmp_path):
    return create_project(tmp_path, "Jobs")


@pytest.fixture
def make_runner(backend, project):
    made = []

    def make(**kwargs):
        if backend == "ray":
            from tools.jobs.ray_runner import RayJobRunner

            runner = RayJobRunner(project, registry(), **kwargs)
        else:
            runner = InProcessJobRunner(project, registry(), **kwargs)
        made.append(runner)
        return runner
    yield make
    for runner in made:
        runner.close()


def _wait_until(check, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _result_files(project, role: str, key: str) -> list[str]:
    folder = project.root / "assets" / "jobs" / role / key[:16]
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --------------------------------------------------------------------------- the contract, both backends


def test_submit_runs_the_work_and_lands_its_files_in_the_project(make_runner, project):
    runner = make_runner()
    assert isinstance(runner, JobRunner)
    spec = JobSpec("painter", {"shot": "ep01_s04", "steps": 2}, model="fake-1", label="panel for shot 4")
    job_id = runner.submit(spec)
    status = runner.wait(job_id, timeout=60)
    assert status.state == "done", status
    assert (status.progress, status.attempts, status.label, status.key) == (1.0, 1, "panel for shot 4", spec.key)
    assert status.elapsed_s > 0
    result = runner.result(job_id)
    assert set(result.files) == {"panel.png", "layers/backdrop.png"}
    rel = result.files["panel.png"]
    assert rel == f"assets/jobs/painter/{spec.key[:16]}/panel.png"
    assert json.loads((project.root / rel).read_bytes())["shot"] == "ep01_s04"
    assert result.data["image"] == "panel.png"
    assert _result_files(project, "painter", spec.key) == ["layers/backdrop.png", "panel.png"]


def test_progress_reaches_subscribers_and_status(make_runner):
    runner = make_runner()
    events: list[JobEvent] = []
    unsubscribe = runner.subscribe(events.append)
    job_id = runner.submit(JobSpec("painter", {"shot": "p", "steps": 4, "step_s": 0.2}))
    _wait_until(lambda: runner.status(job_id).progress > 0, what="progress while running")
    running = runner.status(job_id)
    assert running.state == "running" and running.message.startswith("step ") and running.elapsed_s > 0
    runner.wait(job_id, timeout=60)
    unsubscribe()
    mine = [e for e in events if e.job_id == job_id]
    assert mine[0].state == "queued" and mine[-1].state == "done" and mine[-1].progress == 1.0
    steps = [e for e in mine if e.state == "running" and e.message.startswith("step ")]
    assert len(steps) >= 2
    assert [e.progress for e in steps] == sorted(e.progress for e in steps)
    assert 0 < steps[-1].progress < 1
    count = len(events)
    runner.wait(runner.submit(JobSpec("painter", {"shot": "after"})), timeout=60)
    assert len(events) == count, "an unsubscribed listener still got events"


def test_same_spec_is_never_computed_twice(make_runner, project):
    runner = make_runner()
    events: list[JobEvent] = []
    runner.subscribe(events.append)
    first = runner.submit(JobSpec("painter", {"shot": "a", "steps": 3, "step_s": 0.1}, model="m"))
    again_while_running = runner.submit(JobSpec("painter", {"steps": 3, "shot": "a", "step_s": 0.1}, model="m"))
    assert again_while_running == first
    runner.wait(first, timeout=60)
    started = sum(1 for e in events if e.state == "running" and e.message == "")
    again = runner.submit(JobSpec("painter", {"step_s": 0.1, "shot": "a", "steps": 3}, model="m",
                                  label="another label"))
    assert again == first
    assert runner.status(again).state == "done"
    assert runner.result(again) == runner.result(first)
    assert runner.status(first).attempts == 1
    assert sum(1 for e in events if e.state == "running" and e.message == "") == started == 1
    other_model = runner.submit(JobSpec("painter", {"shot": "a", "steps": 3, "step_s": 0.1}, model="m2"))
    assert other_model != first


def test_backend_is_built_once_per_worker(make_runner):
    runner = make_runner()
    ids = [runner.submit(JobSpec("painter", {"shot": f"s{i}"})) for i in range(3)]
    data = [runner.result(i).data for i in ids if runner.wait(i, timeout=60).state == "done"]
    assert len(data) == 3
    assert len({(d["pid"], d["build"]) for d in data}) == 1, data
    if isinstance(runner, InProcessJobRunner):
        assert runner.builds == 1


def test_cancel_a_running_and_a_queued_job(make_runner, project):
    runner = make_runner()
    long_spec = JobSpec("painter", {"shot": "long", "steps": 200, "step_s": 0.05})
    running = runner.submit(long_spec)
    queued = runner.submit(JobSpec("painter", {"shot": "next"}))
    _wait_until(lambda: runner.status(running).progress > 0, what="the long job to run")
    assert runner.status(queued).state == "queued"
    assert runner.cancel(queued) is True
    assert runner.status(queued).state == "cancelled"
    start = time.monotonic()
    assert runner.cancel(running) is True
    status = runner.wait(running, timeout=30)
    assert status.state == "cancelled" and time.monotonic() - start < 5
    with pytest.raises(JobNotReadyError, match="cancelled"):
        runner.result(running)
    assert _result_files(project, "painter", long_spec.key) == []
    assert runner.cancel(running) is False
    # the lane is free again, and the cancelled queued job never ran
    later = runner.submit(JobSpec("painter", {"shot": "later"}))
    assert runner.wait(later, timeout=60).state == "done"
    assert runner.status(queued).attempts == 0


def test_cancelling_work_that_reports_no_progress(backend, make_runner, project):
    """Ray kills the actor after the grace time; in-process, the thread runs on and its result is dropped."""
    runner = make_runner(cancel_grace_s=0.5) if backend == "ray" else make_runner()
    spec = JobSpec("stubborn", {"sleep": 3.0})
    job_id = runner.submit(spec)
    _wait_until(lambda: runner.status(job_id).state == "running", what="the stubborn job to run")
    time.sleep(0.5)
    start = time.monotonic()
    runner.cancel(job_id)
    assert runner.status(job_id).message == "cancelling"
    status = runner.wait(job_id, timeout=30)
    assert status.state == "cancelled"
    if backend == "ray":
        assert time.monotonic() - start < 2.5, "the actor was not killed after the grace time"
    assert _result_files(project, "stubborn", spec.key) == []
    after = runner.submit(JobSpec("stubborn", {"sleep": 0.1}))
    assert runner.wait(after, timeout=60).state == "done"


def test_a_failed_job_keeps_its_reason_and_retries(make_runner):
    runner = make_runner()
    job_id = runner.submit(JobSpec("painter", {"shot": "oom", "fail_attempts": 1}))
    status = runner.wait(job_id, timeout=60)
    assert status.state == "failed"
    assert "CUDA out of memory on attempt 1" in status.error and status.message == status.error
    with pytest.raises(JobNotReadyError, match="out of memory"):
        runner.result(job_id)
    # a failed key is not a stored result: submitting it again does not return the failure as done
    assert runner.submit(JobSpec("painter", {"shot": "oom", "fail_attempts": 1})) != job_id
    assert runner.retry(job_id) == job_id
    status = runner.wait(job_id, timeout=60)
    assert status.state == "done" and status.attempts == 2 and status.error is None
    assert runner.result(job_id).data["attempt"] == 2


def test_input_files_reach_the_worker(make_runner, project):
    sheet = project.root / "assets" / "characters" / "ref-v1.png"
    sheet.parent.mkdir(parents=True)
    sheet.write_bytes(b"\x89PNG reference sheet")
    runner = make_runner()
    job_id = runner.submit(JobSpec("painter", {"shot": "i", "echo_input": "assets/characters/ref-v1.png"},
                                   inputs=("assets/characters/ref-v1.png",)))
    assert runner.wait(job_id, timeout=60).state == "done"
    assert (project.root / runner.result(job_id).files["echo.bin"]).read_bytes() == b"\x89PNG reference sheet"
    undeclared = runner.submit(JobSpec("painter", {"shot": "u", "echo_input": "assets/characters/ref-v1.png"}))
    status = runner.wait(undeclared, timeout=60)
    assert status.state == "failed" and "'assets/characters/ref-v1.png'" in status.error
    assert "JobSpec.inputs" in status.error


def test_a_backend_that_cannot_load_fails_its_job_with_the_reason(make_runner):
    runner = make_runner()
    job_id = runner.submit(JobSpec("broken", {"shot": "b"}))
    status = runner.wait(job_id, timeout=60)
    assert status.state == "failed" and status.attempts == 1
    assert "cannot load /models/nope.safetensors; check [painter] model" in status.error
    assert runner.wait(runner.submit(JobSpec("painter", {"shot": "fine"})), timeout=60).state == "done"


def test_a_bad_output_name_fails_the_job_and_writes_nothing_outside(make_runner, project):
    runner = make_runner()
    spec = JobSpec("painter", {"shot": "x", "bad_name": "../../escape.png"})
    job_id = runner.submit(spec)
    status = runner.wait(job_id, timeout=60)
    assert status.state == "failed" and "'../../escape.png'" in status.error
    assert _result_files(project, "painter", spec.key) == [], "the good file of a refused batch was written"
    assert not (project.root / "assets" / "escape.png").exists()
    assert not (project.root.parent / "escape.png").exists()


def test_restart_resumes_the_queue(make_runner, project):
    runner = make_runner()
    first = runner.submit(JobSpec("painter", {"shot": "r0", "steps": 3, "step_s": 0.1}))
    queued = [runner.submit(JobSpec("painter", {"shot": f"r{i}"})) for i in (1, 2)]
    _wait_until(lambda: runner.status(first).state == "running", what="the first job to run")
    runner.close()                       # the running job finishes; the queued ones stay queued
    assert runner.status(first).state == "done"
    assert [runner.status(i).state for i in queued] == ["queued", "queued"]
    reopened = make_runner()
    assert [reopened.status(i).state for i in queued] in (["queued", "queued"], ["running", "queued"],
                                                         ["done", "queued"], ["done", "running"],
                                                         ["done", "done"])
    assert [reopened.wait(i, timeout=60).state for i in queued] == ["done", "done"]
    assert reopened.status(first).state == "done"
    assert reopened.submit(JobSpec("painter", {"shot": "r1"})) == queued[0]


def test_a_worker_killed_mid_job_is_retried_and_lands_once(backend, make_runner, project):
    spec = JobSpec("painter", {"shot": "k", "steps": 40, "first_step_s": 0.25, "step_s": 0.01})
    if backend == "ray":
        runner = make_runner()
        events: list[JobEvent] = []
        runner.subscribe(events.append)
        job_id = runner.submit(spec)
        _wait_until(lambda: runner.status(job_id).progress > 0, what="the job to start on an actor")
        actor = runner.actor_for(job_id)
        killed_pid = runner._ray.get(actor.pid.remote())
        runner._ray.kill(actor)
        status = runner.wait(job_id, timeout=120)
        assert sum(1 for e in events if e.job_id == job_id and e.state == "done") == 1
        assert any("retrying" in e.message and "died" in e.message for e in events)
    else:
        killed_pid = _crash_a_process_mid_job(project, spec)
        job_id = _only_job_id(project)        # left 'running' by the killed process
        runner = make_runner()
        status = runner.wait(job_id, timeout=60)
    assert status.state == "done" and status.attempts == 2, status
    data = runner.result(job_id).data
    assert data["attempt"] == 2 and data["pid"] != killed_pid
    assert _result_files(project, "painter", spec.key) == ["layers/backdrop.png", "panel.png"]
    landed = json.loads((project.root / runner.result(job_id).files["panel.png"]).read_bytes())
    assert landed["attempt"] == 2
    with sqlite3.connect(project.root / JOBS_DB) as db:
        assert db.execute("SELECT count(*), max(state) FROM jobs WHERE key = ?", (spec.key,)).fetchone() == (1, "done")


def _crash_a_process_mid_job(project, spec: JobSpec) -> int:
    """Start a studio-like process that runs `spec`, SIGKILL it once the job reports progress."""
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from memory.project import open_project\n"
        "from tests.test_jobs import registry\n"
        "from tools.jobs import JobSpec\n"
        "from tools.jobs.inprocess import InProcessJobRunner\n"
        f"runner = InProcessJobRunner(open_project({str(project.root)!r}), registry())\n"
        "runner.subscribe(lambda e: e.progress > 0 and print('RUNNING', flush=True))\n"
        f"runner.submit(JobSpec.from_json({spec.to_json()!r}))\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "RUNNING"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return proc.pid


def _only_job_id(project) -> str:
    with sqlite3.connect(project.root / JOBS_DB) as db:
        rows = db.execute("SELECT id, state, attempts FROM jobs").fetchall()
    assert len(rows) == 1 and rows[0][1] == "running" and rows[0][2] == 1, rows
    return rows[0][0]


# --------------------------------------------------------------------------- specs, settings, errors


@pytest.mark.parametrize("a, b, same", [
    (JobSpec("painter", {"shot": "s1", "seed": 3}), JobSpec("painter", {"seed": 3, "shot": "s1"}), True),
    (JobSpec("painter", {"shot": "s1"}, label="a"), JobSpec("painter", {"shot": "s1"}, label="b"), True),
    (JobSpec("painter", {"shot": "s1"}), JobSpec("tts", {"shot": "s1"}), False),
    (JobSpec("painter", {"shot": "s1"}, model="a"), JobSpec("painter", {"shot": "s1"}, model="b"), False),
    (JobSpec("painter", {"shot": "s1", "seed": 1}), JobSpec("painter", {"shot": "s1", "seed": 2}), False),
    (JobSpec("painter", {"seed": 1}), JobSpec("painter", {"seed": 1.0}), False),
    (JobSpec("painter", {}, inputs=("assets/a.png",)), JobSpec("painter", {}, inputs=("assets/b.png",)), False),
    (JobSpec("painter", {"tags": ["a", "b"]}), JobSpec("painter", {"tags": ["b", "a"]}), False),
])
def test_job_key_is_a_content_hash(a, b, same):
    assert (a.key == b.key) is same
    assert len(a.key) == 64
    assert JobSpec.from_json(a.to_json()).key == a.key


@pytest.mark.parametrize("kwargs, names", [
    ({"role": "Painter!"}, "'Painter!'"),
    ({"role": ""}, "''"),
    ({"role": "painter", "payload": ["shot"]}, "list"),
    ({"role": "painter", "payload": {"ref": Path("a.png")}}, "PosixPath"),
    ({"role": "painter", "payload": {"seed": float("nan")}}, "nan"),
    ({"role": "painter", "model": 3}, "3"),
    ({"role": "painter", "inputs": ("../canon.sqlite",)}, "'../canon.sqlite'"),
    ({"role": "painter", "inputs": ("/etc/passwd",)}, "'/etc/passwd'"),
    ({"role": "painter", "inputs": "assets/a.png"}, "'assets/a.png'"),
])
def test_a_bad_job_spec_is_refused_naming_the_value(kwargs, names):
    with pytest.raises(JobSpecError) as caught:
        JobSpec(**kwargs)
    assert names in str(caught.value)
    assert isinstance(caught.value, InputError)


@pytest.mark.parametrize("section, expected", [
    (None, {"backend": "inprocess", "address": "auto", "lanes": {"gpu": 1, "tts": 1, "cpu": 1}, "actors": {}}),
    ({"backend": "ray", "address": "ray://head:10001", "actors": {"painter": 4}},
     {"backend": "ray", "address": "ray://head:10001", "lanes": {"gpu": 1, "tts": 1, "cpu": 1},
      "actors": {"painter": 4}}),
    ({"lanes": {"cpu": 2}}, {"backend": "inprocess", "address": "auto", "lanes": {"gpu": 1, "tts": 1, "cpu": 2},
                             "actors": {}}),
    ({"backend": "celery"}, "'celery'"),
    ({"address": "http://head"}, "'http://head'"),
    ({"lanes": {"npu": 1}}, "npu"),
    ({"lanes": {"gpu": 0}}, "gpu = 0"),
    ({"lanes": {"gpu": True}}, "gpu = True"),
    ({"actors": {"painter": "four"}}, "'four'"),
    ({"workers": 3}, "['workers']"),
])
def test_jobs_settings(section, expected):
    if isinstance(expected, dict):
        assert jobs_settings(section) == expected
    else:
        with pytest.raises(InputError, match=expected.replace("[", r"\[").replace("]", r"\]")):
            jobs_settings(section)


def test_runner_from_settings_uses_the_lanes_of_project_toml(tmp_path):
    from memory.project import update_project_settings

    project = update_project_settings(create_project(tmp_path, "Lanes"), "jobs", {"lanes": {"gpu": 2}})
    runner = runner_from_settings(open_project(project.root), registry())
    try:
        assert isinstance(runner, InProcessJobRunner) and runner.lanes == {"gpu": 2, "tts": 1, "cpu": 1}
        ids = [runner.submit(JobSpec("painter", {"shot": f"p{i}", "steps": 4, "step_s": 0.3})) for i in range(2)]
        _wait_until(lambda: all(runner.status(i).state == "running" for i in ids), timeout=10,
                    what="two painter jobs at once on a 2-wide gpu lane")
        assert [runner.wait(i, timeout=30).state for i in ids] == ["done", "done"]
    finally:
        runner.close()


def test_unknown_role_and_job_are_refused_by_name(project):
    runner = InProcessJobRunner(project, registry())
    try:
        with pytest.raises(JobSpecError, match=r"'tts'.*registered: broken, burn, painter, stubborn"):
            runner.submit(JobSpec("tts", {"text": "hi"}))
        with pytest.raises(JobSpecError, match="'assets/missing.png' is not a file"):
            runner.submit(JobSpec("painter", {"shot": "m"}, inputs=("assets/missing.png",)))
        (project.root / "assets" / "link.png").symlink_to(project.root.parent / "outside.png")
        (project.root.parent / "outside.png").write_bytes(b"x")
        with pytest.raises(PathOutsideProjectError, match="assets/link.png"):
            runner.submit(JobSpec("painter", {"shot": "m"}, inputs=("assets/link.png",)))
        with pytest.raises(JobNotFoundError, match="'nope'"):
            runner.status("nope")
        with pytest.raises(JobSpecError, match="'npu'"):
            InProcessJobRunner(project, registry(), lanes={"npu": 1})
    finally:
        runner.close()


def test_removed_result_files_are_computed_again(project):
    runner = InProcessJobRunner(project, registry())
    try:
        spec = JobSpec("painter", {"shot": "gone"})
        job_id = runner.submit(spec)
        runner.wait(job_id, timeout=30)
        (project.root / runner.result(job_id).files["panel.png"]).unlink()
        assert runner.submit(spec) == job_id
        assert runner.wait(job_id, timeout=30).state == "done"
        assert (project.root / runner.result(job_id).files["panel.png"]).is_file()
    finally:
        runner.close()


def test_a_failing_listener_does_not_stop_the_runner(project):
    runner = InProcessJobRunner(project, registry())
    try:
        def broken(event: JobEvent) -> None:
            raise RuntimeError("listener bug")
        runner.subscribe(broken)
        job_id = runner.submit(JobSpec("burn", {"n": 1000}))
        assert runner.wait(job_id, timeout=30).state == "done"
        assert runner.result(job_id).data["sum"] > 0
    finally:
        runner.close()


def test_lanes_run_side_by_side(project):
    """A long painter job does not hold up a CPU job: they are on different lanes."""
    runner = InProcessJobRunner(project, registry())
    try:
        slow = runner.submit(JobSpec("painter", {"shot": "slow", "steps": 40, "step_s": 0.1}))
        _wait_until(lambda: runner.status(slow).state == "running", what="the painter job")
        quick = runner.submit(JobSpec("burn", {"n": 100}))
        assert runner.wait(quick, timeout=10).state == "done"
        assert runner.status(slow).state == "running"
        runner.cancel(slow)
    finally:
        runner.close()


def test_wait_times_out_on_a_running_job(project):
    runner = InProcessJobRunner(project, registry())
    try:
        job_id = runner.submit(JobSpec("painter", {"shot": "w", "steps": 20, "step_s": 0.1}))
        start = time.monotonic()
        assert runner.wait(job_id, timeout=0.3).state in ("queued", "running")
        assert time.monotonic() - start < 2
        runner.cancel(job_id)
    finally:
        runner.close()


def test_submit_after_close_is_refused(project):
    runner = InProcessJobRunner(project, registry())
    runner.close()
    with pytest.raises(Exception, match="closed"):
        runner.submit(JobSpec("burn", {"n": 1}))


def test_threads_are_not_left_running_after_close(project):
    before = threading.active_count()
    runner = InProcessJobRunner(project, registry(), lanes={"cpu": 3})
    runner.wait(runner.submit(JobSpec("burn", {"n": 10})), timeout=30)
    runner.close()
    _wait_until(lambda: threading.active_count() <= before, timeout=10, what="worker threads to end")


# --------------------------------------------------------------------------- built-in roles (real backends)


def _runner_for(backend: str, project, reg: Registry):
    if backend == "ray":
        from tools.jobs.ray_runner import RayJobRunner

        return RayJobRunner(project, reg)
    return InProcessJobRunner(project, reg)


def test_the_painter_role_paints_a_panel_with_its_reference_sheet_as_input(backend, project):
    from PIL import Image

    from tools.backends.protocols import CharacterInShot, PanelRequest
    from tools.jobs.roles import painter_role, panel_spec

    sheet = project.root / "assets" / "characters" / "aiko" / "ref-v1.png"
    sheet.parent.mkdir(parents=True)
    Image.new("RGB", (54, 96), "white").save(sheet)
    request = PanelRequest(shot_id="ep01_s01", width=108, height=192, seed=7, location_name="Rooftop",
                           style_tags=("anime",), characters=(CharacterInShot(
                               id="aiko", name="Aiko", look_tags=("red ribbon",), speaking=True,
                               reference_image=sheet),), line_text="Hi.")
    spec = panel_spec(request, project, model="animatic")
    assert spec.inputs == ("assets/characters/aiko/ref-v1.png",)
    assert spec.payload["characters"][0]["reference_image"] == "assets/characters/aiko/ref-v1.png"
    runner = _runner_for(backend, project, Registry([painter_role({"backend": "animatic"})]))
    try:
        job_id = runner.submit(spec)
        status = runner.wait(job_id, timeout=60)
        assert status.state == "done", status.error
        result = runner.result(job_id)
        image = project.root / result.files[result.data["image"]]
        assert Image.open(image).size == (108, 192) and result.data["seed"] == 7
        assert result.data["layers"] and all(name in result.files for name in result.data["layers"].values())
        assert runner.submit(panel_spec(request, project, model="animatic")) == job_id
    finally:
        runner.close()
    assert painter_role({"backend": "diffusers", "model": "/m"}).num_gpus == 1.0
    assert painter_role(None).num_gpus == 0.0


def test_the_tts_role_voices_a_line(project):
    from tools.backends.protocols import SpeechRequest, VoiceProfile
    from tools.jobs.roles import speech_spec, tts_role

    spec = speech_spec(SpeechRequest(text="The rain is early.", profile=VoiceProfile(engine="espeak", voice="")))
    assert spec.model == "espeak:" and spec.role == "tts"
    runner = InProcessJobRunner(project, Registry([tts_role()]))
    try:
        job_id = runner.submit(spec)
        status = runner.wait(job_id, timeout=60)
        assert status.state == "done", status.error
        wav = (project.root / runner.result(job_id).files["take.wav"]).read_bytes()
        assert wav[:4] == b"RIFF" and len(wav) > 10_000
        import soundfile as sf  # in the project's format already (48 kHz mono): the studio only measures it

        info = sf.info(project.root / runner.result(job_id).files["take.wav"])
        assert (info.samplerate, info.channels) == (48000, 1)
        assert runner.result(job_id).data["audio"] == "take.wav"
        bad = runner.submit(speech_spec(SpeechRequest(text="Qapla'", language="tlh-klingon",
                                                      profile=VoiceProfile(engine="espeak", voice=""))))
        failed = runner.wait(bad, timeout=60)
        assert failed.state == "failed" and "'tlh-klingon'" in failed.error
    finally:
        runner.close()


@pytest.mark.slow
def test_ray_gives_each_gpu_role_actor_one_gpu(tmp_path):
    """In a cluster with two (logical) GPUs, painter actors are two, each with its own GPU."""
    project = create_project(tmp_path, "Gpus")
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "import ray\n"
        f"ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, "
        f"object_store_memory=100 * 1024 * 1024, runtime_env={{'env_vars': {{'PYTHONPATH': {str(REPO)!r}}}}})\n"
        "from memory.project import open_project\n"
        "from tests.test_jobs import gpu_registry\n"
        "from tools.jobs import JobSpec\n"
        "from tools.jobs.ray_runner import RayJobRunner\n"
        f"runner = RayJobRunner(open_project({str(project.root)!r}), gpu_registry())\n"
        "ids = [runner.submit(JobSpec('painter', {'shot': f's{i}'})) for i in range(4)]\n"
        "print(json.dumps({'slots': runner._slot_count('painter'), "
        "'data': [runner.result(i).data for i in ids if runner.wait(i, timeout=120).state == 'done']}))\n"
        "runner.close()\n"
        "ray.shutdown()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["slots"] == 2 and len(report["data"]) == 4
    assert {d["gpus"] for d in report["data"]} == {"0", "1"}


def gpu_work():
    """Reports the GPU Ray gave this actor (CUDA_VISIBLE_DEVICES)."""
    def work(payload: dict, ctx: WorkContext) -> WorkOutput:
        time.sleep(0.3)
        return WorkOutput(files={"x.txt": b"x"}, data={"gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
                                                       "pid": os.getpid()})
    return work


def gpu_registry() -> Registry:
    return Registry([Role("painter", gpu_work, lane="gpu", num_gpus=1)])


def test_the_i2v_role_needs_an_animatediff_model(project):
    from tools.jobs.roles import clip_spec, i2v_role

    (project.root / "assets" / "p.png").write_bytes(b"png")
    runner = InProcessJobRunner(project, Registry([i2v_role({"backend": "camera"})]))
    try:
        job_id = runner.submit(clip_spec("assets/p.png", prompt="wind", num_frames=8, fps=8, seed=1, model="x"))
        status = runner.wait(job_id, timeout=30)
        assert status.state == "failed" and 'backend = "animatediff"' in status.error
    finally:
        runner.close()


@pytest.mark.slow
def test_the_i2v_role_animates_a_panel_with_one_pipeline_load(project, tmp_path):
    pytest.importorskip("diffusers")
    from PIL import Image

    from tools.backends.tiny_diffusers import save_tiny_motion_adapter, save_tiny_sd
    from tools.jobs.roles import clip_spec, i2v_role

    sd, adapter = save_tiny_sd(tmp_path / "sd"), save_tiny_motion_adapter(tmp_path / "adapter")
    panel = project.root / "assets" / "panel-v1.png"
    Image.new("RGB", (90, 160), (40, 60, 200)).save(panel)
    role = i2v_role({"backend": "animatediff", "model": str(sd), "motion_adapter": str(adapter), "steps": 2,
                     "width": 64, "height": 64})
    runner = InProcessJobRunner(project, Registry([role]))
    try:
        ids = [runner.submit(clip_spec("assets/panel-v1.png", prompt="wind", num_frames=4, fps=8, seed=s,
                                       model=str(sd))) for s in (1, 2)]
        statuses = [runner.wait(i, timeout=300) for i in ids]
        assert [s.state for s in statuses] == ["done", "done"], [s.error for s in statuses]
        results = [runner.result(i) for i in ids]
        assert [r.data["loads"] for r in results] == [1, 1] and runner.builds == 1
        frames = [project.root / results[0].files[name] for name in results[0].data["frames"]]
        assert len(frames) == 4 and all(Image.open(f).size == (90, 160) for f in frames)
    finally:
        runner.close()


def always_lost() -> object:
    def work(payload: dict, ctx: WorkContext) -> WorkOutput:
        from tools.jobs import WorkerLostError

        raise WorkerLostError(f"worker lost on attempt {ctx.attempt}")
    return work


def test_a_job_whose_worker_keeps_dying_fails_after_max_attempts(project):
    runner = InProcessJobRunner(project, Registry([Role("flaky", always_lost, max_attempts=2)]))
    try:
        events: list[JobEvent] = []
        runner.subscribe(events.append)
        job_id = runner.submit(JobSpec("flaky", {}))
        status = runner.wait(job_id, timeout=30)
        assert status.state == "failed" and status.attempts == 2
        assert status.error == "worker lost on attempt 2 (gave up after 2 attempts)"
        assert [e.message for e in events if e.state == "queued"][-1] == "retrying: worker lost on attempt 1"
    finally:
        runner.close()
