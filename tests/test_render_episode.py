"""End-to-end renders of short episodes through ffmpeg: container facts, pictures, captions, exports,
loudness, incremental re-cuts, and a render that dies half-way."""
from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tools.render.spec import CaptionCue, EpisodeSpec, ShotSpec, TakeCue

pytestmark = pytest.mark.slow
FPS = 24


def _episode(d: Path, w: int, h: int, music: bool = True) -> EpisodeSpec:
    from tools.render.synthetic import make_music, make_panel, speech_like, write_wav

    shots = []
    for i, (move, tr) in enumerate([("push-in", "cut"), ("pan", "crossfade"), ("static", "dip")]):
        panel = d / f"p{i}.png"
        if not panel.exists():
            make_panel(panel, 10 + i, w, h)
            write_wav(d / f"t{i}.wav", speech_like(1.0, seed=i))
        shots.append(ShotSpec(f"s{i}", panel, 1.5, move, transition_in=tr, transition_s=0.5,
                              captions=(CaptionCue(f"Line {i}: where were you?", 0.5, 1.25, "aki"),),
                              takes=(TakeCue(d / f"t{i}.wav", 0.3),), seed=i))
    if music and not (d / "music.wav").exists():
        make_music(d / "music.wav", 2.0)
    return EpisodeSpec(tuple(shots), fps=FPS, width=w, height=h, music=d / "music.wav" if music else None)


def _probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _frames(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def _atoms(path: Path) -> list[str]:
    data, pos, names = path.read_bytes(), 0, []
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        names.append(data[pos + 4:pos + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        if size < 8:
            break
        pos += size
    return names


@pytest.fixture(scope="module")
def full_hd(tmp_path_factory):
    from tools.render import render_episode

    d = tmp_path_factory.mktemp("hd")
    spec = _episode(d, 1080, 1920)
    return spec, render_episode(spec, d / "out", d / "cache")


def test_mp4_is_h264_aac_faststart_at_the_timeline_length(full_hd):
    _, res = full_hd
    info = _probe(res.mp4)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (v["codec_name"], v["pix_fmt"], v["width"], v["height"]) == ("h264", "yuv420p", 1080, 1920)
    assert v["r_frame_rate"] == "24/1"
    assert res.duration_s == pytest.approx(4.5 - 0.5 - 0.5)
    assert int(v["nb_read_frames"]) == round(res.duration_s * FPS)
    assert abs(float(info["format"]["duration"]) - res.duration_s) <= 1.5 / FPS
    assert a["codec_name"] == "aac" and a["sample_rate"] == "48000"
    atoms = _atoms(res.mp4)
    assert atoms.index("moov") < atoms.index("mdat")
    assert [t[0] for t in res.timeline] == ["s0", "s1", "s2"]


def test_camera_move_and_caption_are_in_the_pixels(full_hd):
    _, res = full_hd
    frames = _frames(res.mp4, 1080, 1920)
    first, mid = frames[0].astype(int), frames[16].astype(int)            # shot s0 pushes in
    assert np.abs(first - mid).mean() > 3
    # caption of s0 is on from 0.5 s to 1.25 s: compare its band at 0.75 s with 0.25 s (push-in moves
    # the picture a little, the caption adds white text and black stroke)
    from tools.render.captions import CAPTION_BOTTOM
    band = slice(int(1920 * CAPTION_BOTTOM) - 120, int(1920 * CAPTION_BOTTOM))
    with_cap, without = frames[18][band].astype(int), frames[6][band].astype(int)
    white = lambda f: ((f > 235).all(axis=2)).sum()
    assert white(with_cap) > white(without) + 500


def test_subtitles_and_otio_read_back(full_hd):
    import opentimelineio as otio
    import srt
    import webvtt

    _, res = full_hd
    subs = list(srt.parse(res.srt.read_text()))
    assert [s.content for s in subs] == [f"Line {i}: where were you?" for i in range(3)]
    starts = [t[1] for t in res.timeline]
    for s, st in zip(subs, starts):
        assert s.start.total_seconds() == pytest.approx(st + 0.5, abs=1e-3)
        assert s.end.total_seconds() == pytest.approx(st + 1.25, abs=1e-3)
    cues = webvtt.read(str(res.vtt))
    assert len(cues) == 3 and "where were you?" in cues[1].text
    tl = otio.adapters.read_from_file(str(res.otio))
    video = tl.video_tracks()[0]
    clips = list(video.find_clips())
    assert [c.name for c in clips] == ["s0", "s1", "s2"]
    transitions = [t for t in video if isinstance(t, otio.schema.Transition)]
    assert len(transitions) == 2
    assert video.duration().to_seconds() == pytest.approx(res.duration_s)
    for clip, (_, _, dur) in zip(clips, res.timeline):
        assert clip.metadata["storyreel"]["duration_frames"] == round(dur * FPS)
    # clip + the handle the next shot's transition uses = the full shot
    assert clips[0].duration().value + transitions[0].out_offset.value == round(1.5 * FPS)
    assert len(list(tl.audio_tracks()[0].find_clips())) == 3
    assert res.contact_sheet.stat().st_size > 1000


def test_output_audio_loudness_and_true_peak(full_hd):
    import pyloudnorm

    from tools.render.audio_mix import true_peak_db

    _, res = full_hd
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(res.mp4), "-vn", "-f", "f32le", "-ac", "1", "-ar",
                          "48000", "-"], capture_output=True, check=True).stdout
    audio = np.frombuffer(raw, np.float32).astype(np.float64)
    assert pyloudnorm.Meter(48000).integrated_loudness(audio) == pytest.approx(-14.0, abs=1.0)
    assert true_peak_db(audio.astype(np.float32)) <= -1.0 + 0.5          # AAC adds a little overshoot


def test_recut_rebuilds_only_the_changed_shot_and_its_transitions(tmp_path):
    from tools.render import render_episode

    spec = _episode(tmp_path, 270, 480, music=False)
    first = render_episode(spec, tmp_path / "out", tmp_path / "cache")
    assert len(first.rebuilt_segments) == 5 and not first.reused_segments
    shots = list(spec.shots)
    shots[1] = replace(shots[1], captions=(CaptionCue("A different line.", 0.5, 1.25),))
    again = render_episode(replace(spec, shots=tuple(shots)), tmp_path / "out", tmp_path / "cache")
    assert set(again.rebuilt_segments) == {"transition:s0->s1", "shot:s1", "transition:s1->s2"}
    assert set(again.reused_segments) == {"shot:s0", "shot:s2"}
    assert "A different line." in again.srt.read_text()
    assert len(list((tmp_path / "cache" / "audio").glob("*.m4a"))) == 1    # a caption edit keeps the mix


def test_a_render_that_dies_keeps_the_old_episode_and_resumes(tmp_path):
    from tools.render import render_episode

    spec = _episode(tmp_path, 270, 480, music=False)
    done = render_episode(spec, tmp_path / "out", tmp_path / "cache")
    before = done.mp4.read_bytes()
    shots = [replace(s, grade="cool") for s in spec.shots]
    changed = replace(spec, shots=tuple(shots))
    calls = []

    def die_after_two(fraction: float, message: str) -> None:
        calls.append(message)
        if sum(m.startswith("rendered") for m in calls) == 2:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        render_episode(changed, tmp_path / "out", tmp_path / "cache", progress=die_after_two, jobs=1)
    assert done.mp4.read_bytes() == before                        # the previous episode is intact
    assert not list((tmp_path / "out").glob(".*part*"))
    assert not list((tmp_path / "cache" / "segments").glob(".*part*"))
    resumed = render_episode(changed, tmp_path / "out", tmp_path / "cache")
    assert len(resumed.reused_segments) >= 2 and len(resumed.rebuilt_segments) <= 3
    assert resumed.mp4.read_bytes() != before


def test_killed_process_leaves_previous_file(tmp_path):
    """A real SIGKILL in the middle of a render: no half-written episode.mp4, no half segment in the cache."""
    import os
    import signal
    import sys
    import time

    from tools.render import render_episode

    spec = _episode(tmp_path, 270, 480, music=False)
    done = render_episode(spec, tmp_path / "out", tmp_path / "cache")
    before = done.mp4.read_bytes()
    script = (
        "import sys, time; from dataclasses import replace; from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from tests.test_render_episode import _episode\n"
        "from tools.render import render_episode\n"
        "d = Path(sys.argv[2]); spec = _episode(d, 270, 480, music=False)\n"
        "spec = replace(spec, shots=tuple(replace(s, duration=6.0, grade='warm') for s in spec.shots))\n"
        "render_episode(spec, d / 'out', d / 'cache', progress=lambda f, m: print(m, flush=True))\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent.parent), str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("rendered"):
            break
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL                         # it really was killed mid-render
    time.sleep(0.2)
    assert done.mp4.read_bytes() == before
    finished = [p for p in (tmp_path / "cache" / "segments").glob("*.mp4") if not p.name.startswith(".")]
    for seg in finished:                                          # every cached segment is complete
        assert _probe(seg)["streams"][0]["codec_name"] == "h264"
