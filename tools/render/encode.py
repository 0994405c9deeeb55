"""ffmpeg plumbing: encode a segment from raw frames, join segments by stream copy, mux audio.

Frames go to ffmpeg as raw I420 (``-pix_fmt yuv420p`` input, the layout x264 encodes), from a writer
thread fed through a bounded queue, so Python makes frame n+1 while the pipe drains frame n. Every
output is written under a temporary name and renamed when complete, so a killed render never leaves
a half file where a finished one is expected.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np

from memory.errors import BackendError

QUEUE_FRAMES = 6
MANIFEST = "parts.json"     # in a run folder: which part becomes which cache file, and its frames


def ffmpeg_exe() -> str:
    """Debian's ffmpeg when installed, else the one bundled with imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise BackendError("ffmpeg not found; apt-get install ffmpeg or pip install imageio-ffmpeg") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffprobe_exe() -> str:
    found = shutil.which("ffprobe")
    if not found:
        raise BackendError("ffprobe not found; apt-get install ffmpeg")
    return found


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.part{path.suffix}")


def durable_replace(tmp: Path, dest: Path) -> Path:
    """Rename a finished file into place so that a crash or power cut right after leaves either no
    file or the whole file: its data is fsync'd before the rename and the folder after it."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(dest)
    try:
        dfd = os.open(dest.parent, os.O_RDONLY)
    except OSError:
        return dest
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
    return dest


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace")[-800:]
        raise BackendError(f"ffmpeg failed to {what} (exit {proc.returncode}): {tail}")


def _widen_pipe(stream: object) -> None:
    """A 1 MiB pipe (Linux; default 64 KiB) hands a 3 MB frame over in a few writes, not ~50."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), 1031, 1 << 20)  # F_SETPIPE_SZ
    except (ImportError, OSError, AttributeError, ValueError):
        pass


class SegmentEncoder:
    """One H.264 segment (its own closed GOPs, starting on an IDR) from I420 frames.

    Use as a context manager; ``write`` takes ownership of the frame (do not reuse the buffer).
    Leaving the block with an exception kills ffmpeg and removes the temporary file.
    """

    def __init__(self, out: Path, width: int, height: int, fps: int, preset: str, crf: int, *,
                 parts: list[tuple[Path, int]] | None = None) -> None:
        """With ``parts`` [(file, frames), ...], one x264 run writes several consecutive segment files:
        an IDR is forced at each boundary and the segment muxer splits there, so each file still
        starts on its own closed GOP (joinable by stream copy) while the encoder never restarts —
        a restart per segment costs start-up and a drained frame-thread pipeline every time."""
        self.out, self.tmp = out, _tmp_name(out)
        self.parts = parts if parts and len(parts) > 1 else None
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
               "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
               "-an", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
               "-colorspace", "smpte170m", "-color_range", "tv"]
        if self.parts is None:
            cmd += ["-f", "mp4", str(self.tmp)]
        else:
            bounds, n = [], 0
            for _, frames in self.parts[:-1]:
                n += frames
                bounds.append(n)
            self.tmp = out.parent / f".run-{os.getpid()}-{threading.get_ident()}-{out.stem[:16]}"
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp.mkdir(parents=True)
            self._fps = fps
            cmd += ["-force_key_frames", "expr:" + "+".join(f"eq(n,{b})" for b in bounds), "-forced-idr", "1",
                    "-f", "segment", "-segment_format", "mp4", "-segment_frames", ",".join(map(str, bounds)),
                    "-reset_timestamps", "1", "-avoid_negative_ts", "disabled",  # each part starts at 0
                    "-segment_list", str(self.tmp / "done.csv"), "-segment_list_type", "csv",
                    str(self.tmp / "part%04d.mp4")]
        self._moved: set[str] = set()
        self.harvested: list[int] = []      # parts moved into place, in the order they were moved
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        if self.parts is not None:          # lets a later render rescue finished parts after a kill
            (self.tmp / MANIFEST).write_text(json.dumps({
                "ffmpeg_pid": self.proc.pid, "fps": fps,
                "parts": [[str(path), frames] for path, frames in self.parts]}))
        _widen_pipe(self.proc.stdin)
        self._q: queue.Queue[np.ndarray | None] = queue.Queue(QUEUE_FRAMES)
        # recycled frame buffers: a fresh 3 MB array per frame costs page faults on every frame
        self._shape = (height * 3 // 2, width)
        self._free: queue.Queue[np.ndarray] = queue.Queue()
        self._owned: list[np.ndarray] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=f"enc-{out.stem}", daemon=True)
        self._thread.start()
        self.frames = 0
        self.fed = 0

    def _drain(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            while True:
                frame = self._q.get()
                if frame is None:
                    break
                stdin.write(memoryview(frame).cast("B"))
                if any(frame is b for b in self._owned):
                    self._free.put(frame)
        except (OSError, ValueError) as exc:  # broken pipe: ffmpeg died; reported by close()
            self._error = exc
            while self._q.get() is not None:   # unblock the producer
                pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def buffer(self) -> np.ndarray:
        """An I420 frame buffer to fill and hand to ``write`` (recycled once ffmpeg has it)."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            if len(self._owned) < QUEUE_FRAMES + 4:
                self._owned.append(np.empty(self._shape, np.uint8))
                return self._owned[-1]
            return self._free.get()

    def write(self, frame: np.ndarray) -> None:
        if self._error is not None:
            raise BackendError(f"ffmpeg stopped while encoding {self.out.name}: {self._error}")
        self._q.put(frame)
        self.frames += 1

    def close(self) -> Path:
        self._q.put(None)
        self._thread.join()
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        rc = self.proc.wait()
        if rc != 0 or self._error is not None:
            self._remove_tmp()
            raise BackendError(f"ffmpeg failed on segment {self.out.name} (exit {rc}): {err[-800:]}")
        if self.parts is None:
            durable_replace(self.tmp, self.out)
            self.harvested.append(0)
            return self.out
        self.harvest()
        if len(self._moved) != len(self.parts):
            self._remove_tmp()
            raise BackendError(f"ffmpeg split a run into {len(self._moved)} segments, not {len(self.parts)}")
        self._remove_tmp()
        return self.out

    def harvest(self, limit: int | None = None) -> list[int]:
        """Move the parts ffmpeg has finished (listed in done.csv once closed) into place, fsync'd,
        so a killed run keeps every segment it completed; ``limit``: only the first N parts (the
        ones whose frames were all fed — a part cut short by an abort is listed too, and dropped).
        Returns the indices moved by this call."""
        if self.parts is None:
            return []
        try:
            listed = (self.tmp / "done.csv").read_text().splitlines()
        except OSError:
            return []
        moved = []
        for line in listed:
            name = line.split(",", 1)[0].strip()
            if not name or name in self._moved or not name.startswith("part"):
                continue
            index = int(name[4:8])
            if index < min(len(self.parts), limit if limit is not None else len(self.parts)) \
                    and (self.tmp / name).is_file():
                durable_replace(self.tmp / name, self.parts[index][0])  # whole or not at all
                self._moved.add(name)
                self.harvested.append(index)
                moved.append(index)
        return moved

    def _remove_tmp(self) -> None:
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)

    def part_fed(self) -> None:
        """The producer has written every frame of the next part."""
        self.fed += 1

    def abort(self) -> None:
        """Stop. In a run, the parts whose frames were all fed are finished and kept (a re-run
        resumes from them); the part in progress is dropped."""
        if self.parts is not None and self.fed and self._error is None:
            self._q.put(None)               # end of input: ffmpeg closes the parts it has
            self._thread.join(timeout=30)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.harvest(limit=self.fed)
            self._remove_tmp()
            return
        self.proc.kill()
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout=5)
        self.proc.wait()
        self.harvest(limit=self.fed)
        self._remove_tmp()

    def __enter__(self) -> SegmentEncoder:  # noqa: PYI034 (final class)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def encode_audio(wav: Path, out_m4a: Path) -> Path:
    """AAC 192 kb/s, 48 kHz, written atomically."""
    tmp = _tmp_name(out_m4a)
    try:
        _run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(wav),
              "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-f", "mp4", str(tmp)], f"encode audio {wav}")
        durable_replace(tmp, out_m4a)
    finally:
        tmp.unlink(missing_ok=True)
    return out_m4a


def join_and_mux(segments: list[Path], audio_m4a: Path, out_mp4: Path, list_file: Path) -> Path:
    """Concat demuxer with ``-c copy`` for the video, the AAC stream copied in, moov first
    (``+faststart``); the episode is renamed into place only when complete."""
    def quote(p: Path) -> str:
        return "file '" + str(p).replace("'", "'\\''") + "'\n"

    list_file.write_text("".join(quote(p) for p in segments))
    tmp = _tmp_name(out_mp4)
    try:
        _run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
              "-f", "concat", "-safe", "0", "-i", str(list_file), "-i", str(audio_m4a),
              "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-movflags", "+faststart",
              "-f", "mp4", str(tmp)], f"join {len(segments)} segments into {out_mp4}")
        durable_replace(tmp, out_mp4)
    finally:
        tmp.unlink(missing_ok=True)
    return out_mp4


def _video_packets(path: Path) -> int | None:
    """Video packets (= frames) in an MP4, counted by demuxing only; None when ffprobe is missing."""
    probe = shutil.which("ffprobe")
    if probe is None:
        return None
    proc = subprocess.run([probe, "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                           "stream=nb_read_packets", "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                          check=False)
    try:
        return int(proc.stdout.strip().splitlines()[0].strip(","))
    except (ValueError, IndexError):
        return 0


def recover_run(run_dir: Path) -> list[Path]:
    """Rescue the segments a killed render finished: the parts its ffmpeg closed (listed in
    done.csv) that hold every frame the manifest expects are moved into the cache; the rest of the
    run folder is removed. Returns the cache files recovered."""
    recovered: list[Path] = []
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text())
        parts = [(Path(p), int(n)) for p, n in manifest["parts"]]
        fps = float(manifest["fps"])
        listed = (run_dir / "done.csv").read_text().splitlines()
    except (OSError, ValueError, KeyError, TypeError):
        listed, parts, fps = [], [], 24.0
    for line in listed:
        fields = [f.strip() for f in line.split(",")]
        name = fields[0]
        if not name.startswith("part") or not name[4:8].isdigit() or not (run_dir / name).is_file():
            continue
        index = int(name[4:8])
        if index >= len(parts):
            continue
        dest, frames = parts[index]
        if dest.parent != run_dir.parent or dest.exists():
            continue
        packets = _video_packets(run_dir / name)
        if packets is None:  # no ffprobe: trust the muxer's own start/end times
            try:
                complete = abs(float(fields[2]) - float(fields[1]) - frames / fps) < 0.5 / fps
            except (IndexError, ValueError):
                complete = False
        else:
            complete = packets == frames
        if complete:
            durable_replace(run_dir / name, dest)
            recovered.append(dest)
    shutil.rmtree(run_dir, ignore_errors=True)
    return recovered
