"""Panel throughput: the offline animatic painter and one DiffusersPainter over a storyboard.

Usage: .venv/bin/python bench/panels.py [--panels 20] [--cuda]

Prints progress lines, then LAST one JSON line:
  animatic_ms_median          median ms per 1080x1920 animatic panel with 2 characters, 1 thread
  pipeline_loads              pipeline loads for the whole tiny-SDXL storyboard (must be 1)
  diffusers_tiny_first_panel_s  the first tiny-SDXL panel, which includes the one pipeline load
  diffusers_tiny_s_per_panel  median s per tiny-SDXL panel (64x112, 4 steps, fitted to 1080x1920)
  diffusers_vs_animatic       ratio of the two medians (baseline: the animatic, same run)
  with --cuda and a GPU: tiny_sdxl_panels_per_s_cpu / _cuda and cuda_speedup
The tiny pipeline is randomly initialised (no weights can be downloaded), so its numbers measure
the painter's overhead around a pipeline call, not a real checkpoint's speed.
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

from tools.backends.protocols import CharacterInShot, PanelRequest

EXPRESSIONS = ("neutral", "happy", "sad", "angry", "surprised", "scared")
FRAMINGS = ("establishing", "wide", "medium", "close-up", "extreme close-up")
MOVES = ("static", "push-in", "pull-out", "pan", "tilt", "shake")
LOCATIONS = (
    ("School rooftop", ("chain fence", "sunset sky")),
    ("Classroom", ("desks", "blackboard", "window light")),
    ("Night street", ("neon signs", "rain", "puddles")),
    ("Train platform", ("bench", "evening")),
)


def storyboard(n: int, width: int = 1080, height: int = 1920) -> list[PanelRequest]:
    """``n`` varied shots, each with the same two characters (as an episode would have)."""
    panels = []
    for i in range(n):
        aiko = CharacterInShot(
            id="aiko", name="Aiko", look_tags=("1girl", "long black hair", "red ribbon", "school uniform"),
            expression=EXPRESSIONS[i % len(EXPRESSIONS)], speaking=i % 2 == 0,
        )
        ren = CharacterInShot(
            id="ren", name="Ren", look_tags=("1boy", "short silver hair", "black jacket"),
            expression=EXPRESSIONS[(i + 3) % len(EXPRESSIONS)], speaking=i % 2 == 1,
        )
        place, tags = LOCATIONS[i % len(LOCATIONS)]
        panels.append(PanelRequest(
            shot_id=f"ep01_s{i:02d}", characters=(aiko, ren), framing=FRAMINGS[i % len(FRAMINGS)],
            camera_move=MOVES[i % len(MOVES)], location_name=place, location_tags=tags,
            style_tags=("anime", "cel shading"), lighting="soft light", mood="tense",
            line_text="You said you'd come back." if i % 2 == 0 else "I never promised.",
            width=width, height=height, seed=1000 + i,
        ))
    return panels


def one_cpu_thread() -> None:
    """Pin to one core and one torch thread: the bench must not depend on a shared machine's load."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def bench_animatic(panels: list[PanelRequest], work: Path) -> float:
    from tools.backends.animatic import AnimaticPainter

    painter = AnimaticPainter()
    painter.paint(panels[0], work / "warmup")           # fonts, numpy kernels
    times = []
    for i, request in enumerate(panels):
        start = time.perf_counter()
        painter.paint(request, work / "animatic")
        times.append((time.perf_counter() - start) * 1000)
        print(f"animatic panel {i + 1}/{len(panels)}: {times[-1]:.0f} ms", flush=True)
    return statistics.median(times)


def bench_tiny_sdxl(panels: list[PanelRequest], model: Path, work: Path, device: str) -> dict[str, float]:
    from tools.backends.diffusers_painter import DiffusersConfig, DiffusersPainter

    painter = DiffusersPainter(DiffusersConfig(model=str(model), device=device, steps=4, width=64, height=112))
    start = time.perf_counter()
    painter.paint(panels[0], work / f"warm-{device}")    # includes the one pipeline load
    first = time.perf_counter() - start
    times = []
    for i, request in enumerate(panels):
        start = time.perf_counter()
        painter.paint(request, work / f"sdxl-{device}")
        times.append(time.perf_counter() - start)
        print(f"tiny SDXL ({device}) panel {i + 1}/{len(panels)}: {times[-1]:.2f} s", flush=True)
    assert painter.load_count == 1, f"{painter.load_count} pipeline loads for {len(panels) + 1} panels"
    return {
        "loads": painter.load_count,
        "first_s": first,
        "median_s": statistics.median(times),
        "panels_per_s": len(times) / sum(times),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=20)
    parser.add_argument("--cuda", action="store_true", help="also compare tiny SDXL panels/s on CUDA vs CPU")
    args = parser.parse_args(argv)

    one_cpu_thread()
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(1)
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()

    from tools.backends.tiny_diffusers import save_tiny_sdxl

    panels = storyboard(args.panels)
    result: dict[str, object] = {"panels": args.panels, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="bench-panels-") as tmp:
        work = Path(tmp)
        print(f"animatic: {args.panels} panels at 1080x1920, 2 characters each, 1 thread", flush=True)
        result["animatic_ms_median"] = round(bench_animatic(panels, work), 1)

        print("tiny SDXL: saving a randomly initialised pipeline to a temp folder", flush=True)
        model = save_tiny_sdxl(work / "tiny-sdxl")
        cpu = bench_tiny_sdxl(panels, model, work, "cpu")
        result["pipeline_loads"] = cpu["loads"]
        result["diffusers_tiny_first_panel_s"] = round(cpu["first_s"], 3)
        result["diffusers_tiny_s_per_panel"] = round(cpu["median_s"], 3)
        result["diffusers_vs_animatic"] = round(cpu["median_s"] * 1000 / result["animatic_ms_median"], 2)

        if args.cuda:
            if torch.cuda.is_available():
                cuda = bench_tiny_sdxl(panels, model, work, "cuda")
                result["tiny_sdxl_panels_per_s_cpu"] = round(cpu["panels_per_s"], 2)
                result["tiny_sdxl_panels_per_s_cuda"] = round(cuda["panels_per_s"], 2)
                result["cuda_speedup"] = round(cuda["panels_per_s"] / cpu["panels_per_s"], 2)
                result["gpu"] = torch.cuda.get_device_name(0)
            else:
                print("--cuda: torch sees no CUDA GPU; CPU numbers only", flush=True)
                result["cuda_available"] = False
    if hasattr(os, "getloadavg"):
        result["loadavg_1min"] = round(os.getloadavg()[0], 2)   # a shared machine skews timings
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
