"""Episode render benchmark: 60 s, 20 shots of 1080x1920, push-in/pan, 0.5 s crossfades, a caption and
a take per shot, a music bed, 24 fps, shipped encoder settings (veryfast, crf 20).

Prints progress, then as its LAST line one JSON object:
  realtime_factor  episode seconds / render wall seconds
  floor_ratio      render wall / raw-encode floor wall (1,440 precomputed rgb24 frames piped to the
                   same x264 settings; frames cycle through a 144-frame pool of real push-in frames)
  vs_moviepy       idiomatic moviepy wall / render wall (null with --skip-moviepy)
  peak_rss_mb      peak summed RSS of the render child and its ffmpeg processes
  recut_ratio      re-render wall after changing one shot's caption / full render wall
plus extras (walls, the stricter floor fed I420 frames, load averages, linearity with --linearity).
Every render runs in a child process so memory and CPU are measured for it alone.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proc_tree import tree_rss_mb

FPS, W, H = 24, 1080, 1920
XFADE = 0.5


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- workload


def make_assets(work: Path, shots: int, seconds: float) -> None:
    from tools.render.synthetic import make_music, make_panel, speech_like, write_wav

    work.mkdir(parents=True, exist_ok=True)
    for i in range(shots):
        if not (work / f"panel{i:02d}.png").exists():
            make_panel(work / f"panel{i:02d}.png", 100 + i, W, H)
        if not (work / f"take{i:02d}.wav").exists():
            write_wav(work / f"take{i:02d}.wav", speech_like(1.6 + 0.1 * (i % 5), seed=i))
    if not (work / f"music{int(seconds)}.wav").exists():
        make_music(work / f"music{int(seconds)}.wav", min(seconds, 45.0), seed=1)


def build_spec(work: Path, shots: int, seconds: float, recut: bool = False):
    """Shot lengths on the frame grid so the episode lasts exactly ``seconds`` with 0.5 s crossfades."""
    from tools.render.spec import CaptionCue, EpisodeSpec, ShotSpec, TakeCue

    total = round(seconds * FPS) + (shots - 1) * round(XFADE * FPS)
    base, extra = divmod(total, shots)
    out = []
    for i in range(shots):
        frames = base + (1 if i < extra else 0)
        text = f"Shot {i + 1}: the rain never stops in this city, does it?"
        if recut and i == shots // 3:
            text = "A rewritten line for this one shot only."
        out.append(ShotSpec(
            shot_id=f"sh{i:02d}", panel=work / f"panel{i:02d}.png", duration=frames / FPS,
            camera_move="push-in" if i % 2 == 0 else "pan", transition_in="crossfade" if i else "cut",
            transition_s=XFADE, captions=(CaptionCue(text, 0.6, frames / FPS - 0.6, "aki"),),
            takes=(TakeCue(work / f"take{i:02d}.wav", 0.6),), seed=i))
    return EpisodeSpec(tuple(out), fps=FPS, width=W, height=H, music=work / f"music{int(seconds)}.wav",
                       title="bench")


# --------------------------------------------------------------------------- child runs


def child_render(work: Path, shots: int, seconds: float, recut: bool, cache: Path, out: Path) -> None:
    from tools.render import render_episode

    spec = build_spec(work, shots, seconds, recut)
    t0 = time.perf_counter()
    res = render_episode(spec, out, cache)
    wall = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"wall": wall, "duration": res.duration_s, "rebuilt": len(res.rebuilt_segments),
                      "reused": len(res.reused_segments), "self_rss_mb": me.ru_maxrss / 1024,
                      "ffmpeg_rss_mb": kids.ru_maxrss / 1024, "self_cpu_s": me.ru_utime + me.ru_stime,
                      "self_sys_s": me.ru_stime, "ffmpeg_cpu_s": kids.ru_utime + kids.ru_stime}))


def child_moviepy(work: Path, shots: int, seconds: float, out: Path) -> None:
    """The idiomatic moviepy 2 edit: ImageClip per shot with a per-frame ``resized`` push-in, crossfades,
    TextClip captions, CompositeVideoClip with an opaque background, CompositeAudioClip, write_videofile."""
    from moviepy import AudioFileClip, CompositeAudioClip, CompositeVideoClip, ImageClip, TextClip, vfx

    from tools.render.captions import find_caption_font
    from tools.render.spec import frame_plan

    spec = build_spec(work, shots, seconds)
    font = str(find_caption_font("en"))
    clips, audio = [], []
    for f, shot in zip(frame_plan(spec), spec.shots):
        d, start = f.length / FPS, f.start / FPS
        def zoom(t: float, d: float = d) -> float:
            return 1.0 + 0.15 * t / d

        clip = ImageClip(str(shot.panel)).with_duration(d).resized(zoom).with_position("center").with_start(start)
        if f.overlap_in:
            clip = clip.with_effects([vfx.CrossFadeIn(f.overlap_in / FPS)])
        if f.overlap_out:
            clip = clip.with_effects([vfx.CrossFadeOut(f.overlap_out / FPS)])
        clips.append(clip)
        cue = shot.captions[0]
        clips.append(TextClip(font=font, text=cue.text, font_size=56, color="white", stroke_color="black",
                              stroke_width=4, method="caption", size=(int(W * 0.84), None))
                     .with_position(("center", int(H * 0.66))).with_start(start + cue.start)
                     .with_duration(cue.end - cue.start))
        audio.append(AudioFileClip(str(shot.takes[0].wav)).with_start(start + shot.takes[0].start))
    duration = frame_plan(spec)[-1].start / FPS + frame_plan(spec)[-1].length / FPS
    music = AudioFileClip(str(spec.music)).with_volume_scaled(0.15)
    audio.append(music.with_duration(min(music.duration, duration)))
    video = CompositeVideoClip(clips, size=(W, H), bg_color=(0, 0, 0)).with_duration(duration)
    video = video.with_audio(CompositeAudioClip(audio).with_duration(duration))
    t0 = time.perf_counter()
    video.write_videofile(str(out), fps=FPS, codec="libx264", preset="veryfast", ffmpeg_params=["-crf", "20"],
                          audio_codec="aac", audio_bitrate="192k", logger=None)
    print(json.dumps({"wall": time.perf_counter() - t0}))


def run_child(args: list[str]) -> tuple[dict, float, float]:
    """Run this script as a child; return (its JSON, wall, peak RSS of its process tree in MB)."""
    peak = [0.0]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)

    def poll() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            time.sleep(0.2)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    stdout, _ = proc.communicate()
    wall = time.perf_counter() - t0
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with exit {proc.returncode}")
    return json.loads(stdout.strip().splitlines()[-1]), wall, peak[0]


# --------------------------------------------------------------------------- the encode floor


def encode_floor(work: Path, pix_fmt: str) -> float:
    """Wall seconds for x264 (same settings) to encode 1,440 frames handed over from memory."""
    import numpy as np

    from tools.render.encode import ffmpeg_exe
    from tools.render.motion import CameraMotion
    from tools.render.spec import ShotSpec

    pool = []
    for i, move in ((0, "push-in"), (1, "pan")):
        m = CameraMotion(ShotSpec(f"f{i}", work / f"panel{i:02d}.png", 3.0, move, seed=i), W, H, FPS)
        for k in range(72):
            pool.append(m.frame(k / FPS) if pix_fmt == "rgb24" else m.frame_i420(k / FPS))
    out = work / f"floor_{pix_fmt}.mp4"
    t0 = time.perf_counter()
    proc = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                             "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-",
                             "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                             str(out)], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for n in range(60 * FPS):
        proc.stdin.write(memoryview(np.ascontiguousarray(pool[n % len(pool)])).cast("B"))
    proc.stdin.close()
    proc.wait()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/storyreel-bench-render"))
    ap.add_argument("--skip-moviepy", action="store_true", help="skip the ~220 s idiomatic moviepy run")
    ap.add_argument("--linearity", action="store_true", help="also render 30/60/120 s episodes")
    ap.add_argument("--child", choices=["render", "moviepy"], help=argparse.SUPPRESS)
    ap.add_argument("--shots", type=int, default=20, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    ap.add_argument("--recut", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child == "render":
        return child_render(a.work, a.shots, a.seconds, a.recut, a.cache, a.out)
    if a.child == "moviepy":
        return child_moviepy(a.work, a.shots, a.seconds, a.out)

    work = a.work
    load_before = os.getloadavg()
    log(f"load average before: {load_before}")
    log("making assets (20 panels, 20 takes, music)")
    make_assets(work, 20, 60)
    cache, out = work / "cache", work / "out"
    shutil.rmtree(cache, ignore_errors=True)

    log("raw-encode floor, rgb24 input")
    floor_rgb = encode_floor(work, "rgb24")
    log(f"floor rgb24: {floor_rgb:.1f} s")
    log("raw-encode floor, I420 input")
    floor_yuv = encode_floor(work, "yuv420p")
    log(f"floor I420: {floor_yuv:.1f} s")

    log("full render (cold cache)")
    full, full_wall, tree_peak = run_child(["--child", "render", "--work", str(work), "--cache", str(cache),
                                            "--out", str(out)])
    log(f"full render: {full['wall']:.1f} s in-process, {full_wall:.1f} s with start-up; tree peak {tree_peak:.0f} MB")
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    log("re-cut: one shot's caption changed")
    recut, recut_wall, _ = run_child(["--child", "render", "--work", str(work), "--cache", str(cache),
                                      "--out", str(out), "--recut"])
    log(f"re-cut: {recut['wall']:.1f} s, rebuilt {recut['rebuilt']} segments, reused {recut['reused']}")

    moviepy_wall = None
    if not a.skip_moviepy:
        log("idiomatic moviepy (slow)")
        mp, _, mp_peak = run_child(["--child", "moviepy", "--work", str(work), "--out", str(work / "moviepy.mp4")])
        moviepy_wall = mp["wall"]
        log(f"moviepy: {moviepy_wall:.1f} s, tree peak {mp_peak:.0f} MB")

    result = {
        "realtime_factor": round(full["duration"] / full_wall, 3),
        "floor_ratio": round(full_wall / floor_rgb, 3),
        "vs_moviepy": round(moviepy_wall / full_wall, 2) if moviepy_wall else None,
        # summed RSS of the render's process tree, polled every 0.2 s; getrusage's ru_maxrss for children
        # also counts the parent's pages that a fork copies before exec, so it is reported only as an extra
        "peak_rss_mb": round(tree_peak, 1),
        "recut_ratio": round(recut_wall / full_wall, 3),
        "floor_ratio_i420_input": round(full_wall / floor_yuv, 3),
        "render_wall_s": round(full_wall, 2), "render_wall_in_process_s": round(full["wall"], 2),
        "recut_wall_s": round(recut_wall, 2), "floor_rgb24_wall_s": round(floor_rgb, 2),
        "floor_i420_wall_s": round(floor_yuv, 2), "moviepy_wall_s": round(moviepy_wall, 2) if moviepy_wall else None,
        "episode_s": full["duration"], "rusage_children_maxrss_mb": round(kids, 1),
        "tree_peak_rss_mb": round(tree_peak, 1), "recut_rebuilt_segments": recut["rebuilt"],
        "load_before": [round(x, 2) for x in load_before],
    }
    if a.linearity:
        lin = {}
        for secs, shots in ((30, 10), (60, 20), (120, 40)):
            make_assets(work, shots, secs)
            c = work / f"cache_lin{secs}"
            shutil.rmtree(c, ignore_errors=True)
            _, wall, _ = run_child(["--child", "render", "--work", str(work), "--cache", str(c),
                                    "--out", str(work / f"out_lin{secs}"), "--shots", str(shots),
                                    "--seconds", str(secs)])
            lin[str(secs)] = round(wall, 2)
            log(f"linearity {secs} s: {wall:.1f} s")
        result["linearity"] = {"wall_s": lin, "s_per_episode_s": {k: round(v / int(k), 3) for k, v in lin.items()}}
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
