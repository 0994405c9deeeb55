"""Writers' room timings on the embedded defaults: `storyreel --help`, studio start, and the time
from a premise to the first proposal on the shipped SmolLM2 model.

Prints progress, then one JSON line: help_s, studio_start_s, premise_to_first_proposal_s,
character_proposal_s (medians over --runs).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def time_help() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ui.cli", "--help"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def time_studio_start(projects: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "--projects-dir", str(projects), "studio",
                             "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit("studio exited early")
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(20)


def time_first_proposals(projects: Path, name: str) -> tuple[float, float]:
    from agent.brain import LazyEmbeddedModel
    from memory.project import create_project
    from ui.session import DirectorSession

    project = create_project(projects, name)
    model = LazyEmbeddedModel(log_path=projects / f"{name}.log")
    try:
        with DirectorSession(project, model) as s:
            s.start()
            model.wait_ready()
            t0 = time.perf_counter()
            s.send("A shrine maiden who hears rain spirits must stop a storm that erases memories.")
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            s.decide({"type": "accept"})
            return first, time.perf_counter() - t0
    finally:
        model.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    helps, starts, firsts, chars = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            helps.append(time_help())
            starts.append(time_studio_start(Path(tmp)))
            f, c = time_first_proposals(Path(tmp), f"Bench {i}")
            firsts.append(f)
            chars.append(c)
            print(f"run {i + 1}: help {helps[-1]:.2f} s, studio start {starts[-1]:.2f} s, "
                  f"premise->first proposal {f:.2f} s, accept->character proposal {c:.2f} s", flush=True)
    print(json.dumps({"help_s": round(statistics.median(helps), 3),
                      "studio_start_s": round(statistics.median(starts), 2),
                      "premise_to_first_proposal_s": round(statistics.median(firsts), 2),
                      "character_proposal_s": round(statistics.median(chars), 2),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
