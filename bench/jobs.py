"""The job runner's cost and Ray's scale-out, against a baseline measured in the same run.

Usage: .venv/bin/python bench/jobs.py [--jobs 40] [--burn-jobs 20] [--no-ray]

- per-job overhead: a fake painter (a few ms of sleep, one small file) called directly, and the same
  work submitted one job at a time (submit -> wait) to the in-process runner and to a RayJobRunner on
  a local Ray cluster (`ray.init(num_cpus=2)`), in interleaved rounds; overhead = median job latency
  - median direct call;
- Ray speed-up: 20 CPU-bound fake jobs on 2 Ray actors vs on 1 (actors warmed up first);
- the studio while drafting: a session (scripted test LLM, real canon/bible/checkpointer) whose card
  drafts 20 panel candidates as jobs with a slow fake painter (a sleep and a tiny PNG per panel) is
  asked a bible question over and over; each answer's latency through `DirectorSession.send`, against
  the same question asked with nothing drafting (same run).

Prints progress lines, then LAST one JSON line:
  jobs_overhead_ms_inprocess   median ms a job costs on top of the direct call (goal <= 20)
  jobs_overhead_ms_ray         the same through Ray actors (driver writes the files)
  ray_parallel_speedup         wall(1 actor) / wall(2 actors) for the 20 CPU-bound jobs (goal >= 1.7 on 2 cores)
  process_parallel_speedup     the same 20 jobs on a plain 1- vs 2-process pool, same run: what the machine's
                               load allowed (Ray's figure is only meaningful next to it)
  landing_write_ms             the durable write of one result file alone (fsyncs; the disk's share of the overhead)
  ui_answer_ms_p95_while_drafting   p95 ms of a bible question answered while 20 panels draft (goal <= 500)
  ui_answer_ms_p95_idle             the same question with nothing drafting (the baseline)
  direct_ms, burn_job_s, load_avg_1m, cpus   the baselines and the machine's state while measuring
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.project import create_project
from tools.jobs import JobSpec, Registry, Role, WorkContext, WorkOutput

PAINT_S = 0.005


def fake_painter():
    """A painter whose 'paint' sleeps PAINT_S and returns a 20 kB file (a small PNG's size)."""
    def paint(payload: dict, ctx: WorkContext) -> WorkOutput:
        ctx.progress(0.0, "painting")
        time.sleep(PAINT_S)
        return WorkOutput(files={"panel.png": bytes(20_000)}, data={"shot": payload["shot"]})
    return paint


def burner():
    """CPU-bound work: `n` rounds of integer arithmetic in pure Python (holds one core)."""
    def burn(payload: dict, ctx: WorkContext) -> WorkOutput:
        total = 0
        for i in range(int(payload["n"])):
            total = (total * 31 + i) % 1_000_003
        return WorkOutput(data={"sum": total, "job": payload["job"]})
    return burn


def registry() -> Registry:
    return Registry([Role("painter", fake_painter, lane="gpu", num_gpus=1), Role("burn", burner, lane="cpu")])


def direct_times(n: int, tag: str) -> list[float]:
    paint = fake_painter()
    times = []
    for i in range(n):
        ctx = WorkContext(job_id=f"d{i}", attempt=1, inputs={}, report=lambda f, m: None, cancelled=lambda: False)
        start = time.perf_counter()
        paint({"shot": f"{tag}-{i}"}, ctx)
        times.append((time.perf_counter() - start) * 1000)
    return times


def landing_times(folder: Path, n: int, tag: str) -> list[float]:
    """What writing one job's result durably costs here (temp file, fsync, rename, folder fsyncs)."""
    from tools.jobs.core import _write_durably

    times = []
    for i in range(n):
        start = time.perf_counter()
        _write_durably({folder / "assets" / "jobs" / "painter" / f"{tag}-{i}" / "panel.png": bytes(20_000)},
                       top=folder / "assets")
        times.append((time.perf_counter() - start) * 1000)
    return times


def job_times(runner, n: int, tag: str) -> list[float]:
    """Latency of `n` jobs submitted one at a time (submit -> wait -> done)."""
    times = []
    for i in range(n):
        start = time.perf_counter()
        status = runner.wait(runner.submit(JobSpec("painter", {"shot": f"{tag}-{i}"})), timeout=120)
        times.append((time.perf_counter() - start) * 1000)
        if status.state != "done":
            raise SystemExit(f"job {i} on {tag} ended {status.state}: {status.error}")
    return times


def _burn_one(n: int) -> int:
    return burner()({"n": n, "job": 0}, WorkContext(job_id="p", attempt=1, inputs={}, report=lambda f, m: None,
                                                    cancelled=lambda: False)).data["sum"]


def process_wall_s(workers: int, jobs: int, n: int) -> float:
    """The same CPU-bound jobs on a plain process pool: what this machine allows right now."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_burn_one, [1000] * workers)
        start = time.perf_counter()
        pool.map(_burn_one, [n] * jobs, chunksize=1)
        return time.perf_counter() - start


def burn_wall_s(ray_runner_cls, project_parent: Path, actors: int, jobs: int, n: int) -> float:
    project = create_project(project_parent, f"burn-{actors}")
    runner = ray_runner_cls(project, registry(), actors={"burn": actors})
    try:
        warm = [runner.submit(JobSpec("burn", {"n": 1000, "job": f"warm{i}"})) for i in range(actors * 2)]
        for job_id in warm:
            runner.wait(job_id, timeout=300)
        start = time.perf_counter()
        ids = [runner.submit(JobSpec("burn", {"n": n, "job": i})) for i in range(jobs)]
        for job_id in ids:
            if runner.wait(job_id, timeout=600).state != "done":
                raise SystemExit(f"burn job {job_id} did not finish: {runner.status(job_id)}")
        return time.perf_counter() - start
    finally:
        runner.close()


class SleepyPainter:
    """A `PanelPainter` that sleeps `delay` seconds and writes a tiny PNG (no CPU of its own)."""

    name = "sleepy"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def paint(self, request, out_dir: Path):
        from PIL import Image

        from tools.backends.protocols import PanelResult

        time.sleep(self.delay)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{request.shot_id}-s{request.seed}.png"
        Image.new("RGB", (9, 16), "navy").save(path)
        return PanelResult(image=path, seed=request.seed, model="sleepy")


def answers_while_drafting(parent: Path, *, panels: int, questions: int, paint_s: float) -> dict[str, float]:
    """p95 latency of a bible question through the session, idle and while `panels` draft as jobs."""
    from agent.context import Targets
    from tests.fakes import (
        ScriptedChatModel,  # a deterministic LLM: the figure is the session's, not a model's
    )
    from tools.jobs.inprocess import InProcessJobRunner
    from tools.jobs.roles import painter_role_for
    from ui.session import DirectorSession

    def p95(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    project = create_project(parent, "drafting")
    painter = SleepyPainter(paint_s)
    runner = InProcessJobRunner(project, Registry([painter_role_for(painter)]))
    targets = Targets(characters=1, locations=1, props=0, episodes=1, scenes=1)
    with DirectorSession(project, ScriptedChatModel(), targets=targets, painter=painter, candidates=panels,
                         job_runner=runner) as s:
        s.start()
        view = s.send("A shrine maiden hears rain spirits.")
        times: dict[str, list[float]] = {"idle": [], "drafting": []}
        for _ in range(questions):             # nothing drafting yet: the writers' room's first card
            start = time.perf_counter()
            s.send("What does Aiko wear?")
            times["idle"].append((time.perf_counter() - start) * 1000)
        view = s.view()
        while view.pending["kind"] in ("series", "character", "location", "outline", "beats", "scene"):
            view = s.decide({"type": "accept"})
        drafting = (view.pending.get("data") or {}).get("drafting")
        if not drafting or len(drafting["jobs"]) != panels:
            raise SystemExit(f"expected a card drafting {panels} panels, got {view.pending}")
        for _ in range(questions):
            start = time.perf_counter()
            s.send("What does Aiko wear?")
            times["drafting"].append((time.perf_counter() - start) * 1000)
        still = (s.view().pending.get("data") or {}).get("drafting")
        if not still or still["done"] >= still["total"]:
            raise SystemExit("the panels finished before the questions did; raise --paint-s")
        for job_id in drafting["jobs"]:
            runner.cancel(job_id)
    return {"ui_answer_ms_p95_while_drafting": round(p95(times["drafting"]), 1),
            "ui_answer_ms_p95_idle": round(p95(times["idle"]), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs for the overhead medians (default 40)")
    parser.add_argument("--burn-jobs", type=int, default=20, help="CPU-bound jobs for the Ray speed-up (default 20)")
    parser.add_argument("--burn-n", type=int, default=2_000_000, help="arithmetic rounds per CPU-bound job")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds for the overheads (default 4)")
    parser.add_argument("--no-ray", action="store_true", help="only the in-process runner")
    parser.add_argument("--questions", type=int, default=20, help="questions asked while drafting (default 20)")
    parser.add_argument("--panels", type=int, default=20, help="panels drafting meanwhile (default 20)")
    parser.add_argument("--paint-s", type=float, default=0.5, help="the slow fake painter's seconds per panel")
    args = parser.parse_args()

    result: dict[str, object] = {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    from tools.jobs.inprocess import InProcessJobRunner

    with tempfile.TemporaryDirectory(prefix="storyreel-bench-jobs-") as tmp:
        answers = answers_while_drafting(Path(tmp), panels=args.panels, questions=args.questions,
                                         paint_s=args.paint_s)
        result.update(answers)
        print(f"a bible question while {args.panels} panels draft: p95 {answers['ui_answer_ms_p95_while_drafting']} ms "
              f"(idle: {answers['ui_answer_ms_p95_idle']} ms)", flush=True)
        ray = None
        runners = {"inprocess": InProcessJobRunner(create_project(Path(tmp), "inprocess"), registry())}
        if not args.no_ray:
            import ray

            from tools.jobs.ray_runner import RayJobRunner

            print("starting a local Ray cluster (num_cpus=2)", flush=True)
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     object_store_memory=100 * 1024 * 1024,
                     runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
            runners["ray"] = RayJobRunner(create_project(Path(tmp), "ray"), registry())
        try:
            for name, runner in runners.items():          # builds each backend (the actor's load) first
                runner.wait(runner.submit(JobSpec("painter", {"shot": "warm"})), timeout=120)
            # Rounds interleave the direct calls and both runners, so a neighbour's burst of load or of
            # disk writes hits them alike.
            times: dict[str, list[float]] = {"direct": [], "landing": [], **{name: [] for name in runners}}
            landing = Path(tmp) / "landing"
            (landing / "assets").mkdir(parents=True)
            per_round = max(1, args.jobs // args.rounds)
            for r in range(args.rounds):
                times["direct"] += direct_times(per_round, f"r{r}")
                times["landing"] += landing_times(landing, per_round, f"r{r}")
                for name, runner in runners.items():
                    times[name] += job_times(runner, per_round, f"r{r}")
            base = statistics.median(times["direct"])
            result["direct_ms"] = round(base, 2)
            result["landing_write_ms"] = round(statistics.median(times["landing"]), 2)
            print(f"direct call of the fake painter: {base:.2f} ms (median of {len(times['direct'])})", flush=True)
            for name in runners:
                latency = statistics.median(times[name])
                result[f"jobs_overhead_ms_{name}"] = round(latency - base, 2)
                print(f"{name}: {latency:.2f} ms per job, overhead {latency - base:.2f} ms", flush=True)
            print(f"writing one result durably (fsyncs), part of both overheads: {result['landing_write_ms']:.2f} ms",
                  flush=True)
        finally:
            for runner in runners.values():
                runner.close()
        if ray is not None:
            try:
                from tools.jobs.ray_runner import RayJobRunner

                one = burn_wall_s(RayJobRunner, Path(tmp), 1, args.burn_jobs, args.burn_n)
                print(f"{args.burn_jobs} CPU-bound jobs on 1 actor: {one:.2f} s", flush=True)
                two = burn_wall_s(RayJobRunner, Path(tmp), 2, args.burn_jobs, args.burn_n)
                print(f"{args.burn_jobs} CPU-bound jobs on 2 actors: {two:.2f} s", flush=True)
                result["burn_job_s"] = round(one / args.burn_jobs, 3)
                result["ray_parallel_speedup"] = round(one / two, 2)
                p1 = process_wall_s(1, args.burn_jobs, args.burn_n)
                p2 = process_wall_s(2, args.burn_jobs, args.burn_n)
                print(f"the same on a process pool: 1 process {p1:.2f} s, 2 processes {p2:.2f} s", flush=True)
                result["process_parallel_speedup"] = round(p1 / p2, 2)
            finally:
                ray.shutdown()
    result["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
