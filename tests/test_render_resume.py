"""Render leftovers and resume (issue 9.9) and bounded music decoding (issue 9.10): a killed render keeps
every segment it finished, temporaries are cleaned on start and on success, and a long music bed is
decoded only as far as the episode needs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _temporaries(*folders: Path) -> list[str]:
    """Every dot-name a render may leave (run/side folders, concat lists, mixes, *.part* files)."""
    return sorted(str(p) for folder in folders if folder.exists() for p in folder.rglob(".*"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_clean_leftovers_removes_only_temporaries_of_processes_that_are_gone(tmp_path):
    from tools.render.segments import clean_leftovers

    out, cache = tmp_path / "renders" / "ep01", tmp_path / "cache"
    for folder in (out, cache / "segments", cache / "audio", cache / "sheets"):
        folder.mkdir(parents=True)
    dead, alive, me = _dead_pid(), os.getppid(), os.getpid()
    gone = [out / f".episode.{dead}.140000.part.mp4", out / f".episode.srt.{dead}.part",
            cache / f".concat-{dead}-1-2.txt", cache / "audio" / f".mix-{dead}-1-2.wav",
            cache / "audio" / f".mix-{dead}-1-2.wav.part", cache / "audio" / f".abc.{dead}.7.part.m4a",
            cache / "sheets" / f".k.png.{dead}.part.png", cache / "segments" / f".f00d.{dead}.9.part.mp4"]
    for path in gone:
        path.write_bytes(b"x" * 100)
    side, run = cache / f".side-{dead}-1-2", cache / "segments" / f".run-{dead}-5-abcdef"
    for folder in (side, run):
        folder.mkdir()
        (folder / "junk").write_bytes(b"x")
    kept = [out / f".episode.{alive}.1.part.mp4", cache / f".concat-{me}-1-2.txt", out / "episode.mp4",
            cache / "segments" / ("ab" * 32 + ".mp4"), out / ".hidden-by-the-user"]
    for path in kept:
        path.write_bytes(b"y")
    recovered, removed = clean_leftovers(out, cache)
    assert recovered == []
    assert sorted(removed) == sorted([*gone, side, run])
    assert not any(p.exists() for p in [*gone, side, run])
    assert all(p.exists() for p in kept)


def test_segments_an_orphaned_encoder_closed_are_rescued_and_a_cut_short_one_is_dropped(tmp_path):
    """What a SIGKILLed render leaves: ffmpeg got EOF and closed every part, the last one short.
    The next render moves the complete parts into the cache and drops the short one."""
    from tools.render.encode import SegmentEncoder
    from tools.render.segments import clean_leftovers

    seg_dir = tmp_path / "cache" / "segments"
    seg_dir.mkdir(parents=True)
    parts = [(seg_dir / f"{k:064x}.mp4", 12) for k in (1, 2, 3)]
    enc = SegmentEncoder(parts[0][0], 64, 64, 24, "ultrafast", 30, parts=parts)
    for n in range(12 + 12 + 5):                     # the third part gets 5 of its 12 frames
        frame = enc.buffer()
        frame[:] = (n * 7) % 255
        enc.write(frame)
    enc._q.put(None)                                 # the producer dies: ffmpeg sees EOF ...
    enc._thread.join()
    enc.proc.wait()                                  # ... and closes what it has; nobody harvests
    dead_run = seg_dir / f".run-{_dead_pid()}-1-{parts[0][0].stem[:16]}"
    enc.tmp.rename(dead_run)
    assert not any(path.exists() for path, _ in parts)
    recovered, removed = clean_leftovers(tmp_path / "out", tmp_path / "cache")
    assert recovered == [parts[0][0], parts[1][0]] and removed == [dead_run]
    assert not parts[2][0].exists() and not dead_run.exists()
    from tests.test_render_episode import _probe

    for path, frames in parts[:2]:
        assert int(_probe(path)["streams"][0]["nb_read_frames"]) == frames


@pytest.mark.slow
def test_a_killed_render_keeps_its_finished_segments_and_leaves_nothing_behind(tmp_path):
    """SIGKILL a render process right after its first segment is cached: the previous MP4 still
    decodes, the re-render reuses every segment reported finished (and those the orphaned encoder
    finished), and no temporary remains anywhere."""
    from tests.test_render_episode import _episode, _probe
    from tools.render import render_episode

    out, cache = tmp_path / "out", tmp_path / "cache"
    before = render_episode(_episode(tmp_path, 270, 480, music=False), out, cache)
    frames_before = int(_probe(before.mp4)["streams"][0]["nb_read_frames"])
    script = (
        "import sys; from dataclasses import replace; from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from tests.test_render_episode import _episode\n"
        "from tools.render import render_episode\n"
        "d = Path(sys.argv[2]); spec = _episode(d, 270, 480, music=False)\n"
        "spec = replace(spec, shots=tuple(replace(s, duration=4.0, grade='warm') for s in spec.shots))\n"
        "render_episode(spec, d / 'out', d / 'cache', progress=lambda f, m: print(m, flush=True), jobs=1)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(ROOT), str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    reported = []
    for line in proc.stdout:
        if line.startswith("rendered "):
            reported.append(line.split()[1])
            break
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and reported == ["shot:s0"]
    # what was reported finished is in the cache, complete, right after the kill
    spec = _episode(tmp_path, 270, 480, music=False)
    spec = replace(spec, shots=tuple(replace(s, duration=4.0, grade="warm") for s in spec.shots))
    from tools.render.segments import frame_plan, plan_segments

    segs = {s.label: cache / "segments" / f"{s.key}.mp4" for s in plan_segments(spec, frame_plan(spec))}
    assert segs["shot:s0"].is_file() and _probe(segs["shot:s0"])["streams"][0]["codec_name"] == "h264"
    assert int(_probe(before.mp4)["streams"][0]["nb_read_frames"]) == frames_before   # the old cut decodes
    time.sleep(0.5)                                   # the orphaned ffmpeg closes what it was given
    cached_after_kill = {label for label, path in segs.items() if path.is_file()}
    again = render_episode(spec, out, cache)
    assert set(reported) <= set(again.reused_segments)
    assert cached_after_kill <= set(again.reused_segments)
    assert len(again.reused_segments) + len(again.rebuilt_segments) == len(segs)
    assert _temporaries(out, cache) == []
    info = _probe(again.mp4)
    assert int(info["streams"][0]["nb_read_frames"]) == round(again.duration_s * 24)
    # and a third render reuses everything
    third = render_episode(spec, out, cache)
    assert third.rebuilt_segments == () and _temporaries(out, cache) == []


@pytest.fixture(scope="module")
def long_music(tmp_path_factory) -> Path:
    """Ten minutes of sine, written small (8 kHz 16-bit mono WAV, ~9.6 MB)."""
    path = tmp_path_factory.mktemp("music") / "ten_minutes.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=8000",
                    "-t", "600", "-ac", "1", "-c:a", "pcm_s16le", str(path)], check=True)
    return path


def test_decode_music_reads_only_what_the_episode_needs(long_music):
    from tools.render.audio_mix import RATE, decode_music
    from tools.render.encode import ffmpeg_exe

    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
                            str(long_music)], capture_output=True, text=True, check=True)
    assert float(json.loads(probe.stdout)["format"]["duration"]) == pytest.approx(600, abs=0.1)
    t0 = time.perf_counter()
    audio = decode_music(long_music, ffmpeg_exe(), seconds=4.5)
    elapsed = time.perf_counter() - t0
    assert abs(audio.size - round(4.5 * RATE)) <= RATE // 100          # ~ the episode, not ten minutes
    assert audio.dtype == np.float32 and np.abs(audio).max() > 0.1
    assert elapsed < 1.5, f"decoding 4.5 s of a 10 min bed took {elapsed:.2f} s"


def test_the_mix_decodes_a_long_bed_only_as_far_as_the_episode(long_music, tmp_path, monkeypatch):
    import tools.render.audio_mix as mixer
    from tools.render.encode import ffmpeg_exe
    from tools.render.spec import EpisodeSpec, ShotSpec
    from tools.render.synthetic import make_panel

    make_panel(tmp_path / "p.png", 3, 270, 480)
    spec = EpisodeSpec((ShotSpec("s1", tmp_path / "p.png", 2.0),), width=270, height=480, music=long_music)
    decoded = []
    real = mixer.decode_music

    def spy(path, ffmpeg, seconds=None):
        audio = real(path, ffmpeg, seconds)
        decoded.append(audio.size)
        return audio

    monkeypatch.setattr(mixer, "decode_music", spy)
    report = mixer.mix_episode_audio(spec, tmp_path / "mix.wav", ffmpeg_exe())
    assert report.samples == 2 * mixer.RATE
    assert decoded and decoded[0] <= 2 * mixer.RATE + mixer.RATE // 100
