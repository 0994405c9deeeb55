"""Benchmark the director's routers.

- the offline router (MiniLM exemplars + canon links, one thread) over the utterance table of
  tests/router_table.py: accuracy (right tool AND target), and latency per message (p50, p95);
- the tool-calling router against the local fake OpenAI-compatible server (tests/fake_tools_openai.py,
  the real `tool_calls` wire format): latency of one routed message, network and validation included.

Prints the misses, then the figures last as one JSON line:
`router_accuracy`, `router_ms_p50`, `router_ms_p95`, `tool_call_ms_p50`. Goals: accuracy >= 0.9, p95 <= 50 ms.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")   # before numpy / onnxruntime load: one thread, as measured

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes over the table for the timings (default 3)")
    parser.add_argument("--tool-calls", type=int, default=30, help="messages routed by the fake model (default 30)")
    args = parser.parse_args()

    from agent.llm import OpenAIChatModel
    from agent.router import OfflineRouter, ToolCallingRouter
    from tests.fake_tools_openai import FakeToolsServer
    from tests.router_table import ROWS, open_fixture, outcome

    with tempfile.TemporaryDirectory() as tmp:
        canon = open_fixture(Path(tmp) / "bench")
        ctx = SimpleNamespace(canon=canon)
        router = OfflineRouter()
        start = time.perf_counter()
        router.warm()
        warm_ms = (time.perf_counter() - start) * 1000
        misses: list[str] = []
        times: list[float] = []
        for n in range(args.repeat):
            for row in ROWS:
                t0 = time.perf_counter()
                route = router.route(row.text, ctx, {"pending": row.card})
                times.append((time.perf_counter() - t0) * 1000)
                got = outcome(route)
                if n == 0 and got != (row.tools, row.targets):
                    misses.append(f"{row.text!r}: expected {row.tools} {row.targets}, got {got[0]} {got[1]}")
        accuracy = 1 - len(misses) / len(ROWS)
        for miss in misses:
            print("miss:", miss)

        turn = {"calls": [("revise", {"record": "Aiko", "instruction": "make her older"})]}
        with FakeToolsServer([turn] * (args.tool_calls + 1)) as server:
            llm = OpenAIChatModel(base_url=server.url, model="fake-tools")
            tools_router = ToolCallingRouter(llm, fallback=router)
            tools_router.route("make Aiko older", ctx, {"pending": None})   # connection and client set up
            call_times = []
            for _ in range(args.tool_calls):
                t0 = time.perf_counter()
                route = tools_router.route("make Aiko older", ctx, {"pending": None})
                call_times.append((time.perf_counter() - t0) * 1000)
                assert route.calls and route.calls[0].target == "character-aiko", route
        canon.close()

    result = {"utterances": len(ROWS), "router_accuracy": round(accuracy, 3),
              "router_ms_p50": round(statistics.median(times), 2), "router_ms_p95": round(percentile(times, 0.95), 2),
              "router_warm_ms": round(warm_ms, 1), "tool_call_ms_p50": round(statistics.median(call_times), 2),
              "misses": len(misses)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
