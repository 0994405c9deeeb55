"""Fault tolerance figures: kill points, bad inputs, and the studio's idle CPU.

Usage: .venv/bin/python bench/faults.py [--idle-seconds 30] [--skip-kills] [--skip-bad] [--skip-idle]

- Kill points: every entry of `tests.test_faults.KILL_POINTS` is run through `run_kill_point`, which
  kills a real `storyreel chat` (or render) process at that point and reopens the project; a point
  counts as zero-loss when every accepted decision is in canon exactly once, ledger and canon agree,
  the pending proposal is intact and the previous MP4 still decodes.
- Bad inputs: every entry of `tests.test_bad_inputs.BAD_INPUTS` through `run_bad_input`: clean when
  the director gets a message (no traceback) and the project's files are untouched.
- Idle CPU: the real studio process with a page open in Debian's Chromium and nothing running;
  CPU seconds of the studio and its children over the window, as a percentage of one core. The
  baseline is the same process measured with no page open, in the same run.

Prints progress lines, then LAST one JSON line:
  kill_points, kill_points_zero_loss, bad_inputs, bad_inputs_clean, idle_studio_cpu_pct,
  idle_studio_cpu_pct_no_page (baseline), idle_seconds
Goals: every kill point zero-loss, every bad input clean, idle_studio_cpu_pct <= 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proc_tree import tree_cpu_seconds


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def kill_points() -> tuple[int, int]:
    from tests.test_faults import KILL_POINTS, run_kill_point

    ok = 0
    for name in KILL_POINTS:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                good = bool(run_kill_point(name, Path(tmp)))
            except Exception as exc:  # a failed check is a lossy point, not a crashed bench
                _log(f"  kill point {name}: check failed: {type(exc).__name__}: {exc}")
                good = False
        _log(f"  kill point {name}: {'zero loss' if good else 'LOSS'}")
        ok += good
    return len(KILL_POINTS), ok


def bad_inputs() -> tuple[int, int]:
    from tests.test_bad_inputs import BAD_INPUTS, run_bad_input

    ok = 0
    for case in BAD_INPUTS:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                good = bool(run_bad_input(case, Path(tmp)))
            except Exception as exc:
                _log(f"  bad input {case!r}: check failed: {type(exc).__name__}: {exc}")
                good = False
        _log(f"  bad input {getattr(case, 'name', case)!r}: {'clean' if good else 'NOT CLEAN'}")
        ok += good
    return len(BAD_INPUTS), ok


def idle_cpu(seconds: float) -> tuple[float, float]:
    """(% of one core with a page open, % with no page) for the studio doing nothing."""
    from tests.fake_openai import FakeOpenAIServer
    from tests.test_browser_studio import CHROMIUM, LAUNCH_ARGS, free_port, prepared_project, start_studio

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer() as llm:
        projects = Path(tmp)
        prepared_project(projects, "character")
        port = free_port()
        proc = start_studio(projects, port, llm.url, "fox-rain")
        try:
            time.sleep(3)
            c0 = tree_cpu_seconds(proc.pid)
            time.sleep(seconds)
            no_page = 100.0 * (tree_cpu_seconds(proc.pid) - c0) / seconds
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
                page.locator("#card").wait_for(timeout=60_000)
                time.sleep(5)  # the page's first loads are not idle time
                c0 = tree_cpu_seconds(proc.pid)
                time.sleep(seconds)
                with_page = 100.0 * (tree_cpu_seconds(proc.pid) - c0) / seconds
                browser.close()
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except Exception:
                proc.kill()
    return with_page, no_page


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--skip-kills", action="store_true")
    ap.add_argument("--skip-bad", action="store_true")
    ap.add_argument("--skip-idle", action="store_true")
    args = ap.parse_args()
    out: dict[str, float | int | None] = {}
    if not args.skip_kills:
        _log("kill points …")
        out["kill_points"], out["kill_points_zero_loss"] = kill_points()
    if not args.skip_bad:
        _log("bad inputs …")
        out["bad_inputs"], out["bad_inputs_clean"] = bad_inputs()
    if not args.skip_idle:
        _log(f"idle studio CPU over {args.idle_seconds:.0f} s …")
        with_page, no_page = idle_cpu(args.idle_seconds)
        out["idle_studio_cpu_pct"] = round(with_page, 2)
        out["idle_studio_cpu_pct_no_page"] = round(no_page, 2)
        out["idle_seconds"] = args.idle_seconds
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
