"""Episode render: shot bodies and transitions as separately cached H.264 segments, joined by copy.

Each segment file is named by the sha256 of everything that decides its pixels (file contents of
panels/layers/variants/takes, every shot parameter, captions, frame range, size, fps, encoder settings,
font, renderer version), so an edit re-encodes only what it touches: changing one shot re-renders its
body and the transitions on either side of it. Segments are fsync'd and renamed into the cache as each
one completes (a "rendered …" progress message means it is there), so a killed render resumes from
everything it finished; the next render also rescues the segments a killed render's encoder closed
after its death, and removes every temporary of a process that is gone (``clean_leftovers``), on start
and on success.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

from memory.errors import StoryreelError
from memory.faults import crash_point
from tools.render.spec import (
    EpisodeSpec,
    ShotFrames,
    ShotSpec,
    frame_plan,
    timeline,
    total_frames,
    validate_spec,
)

RENDERER_VERSION = "storyreel-render-2"   # 2: long captions split over time
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Segment:
    key: str                 # sha256 -> file name
    kind: str                # "shot" | "transition"
    shot: int                # the shot (for a transition: the incoming shot)
    start: int               # absolute frame range [start, end)
    end: int
    label: str               # "shot:<id>" or "transition:<from>-><to>"

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class RenderResult:
    mp4: Path
    srt: Path
    vtt: Path
    otio: Path
    contact_sheet: Path
    duration_s: float
    rebuilt_segments: tuple[str, ...]
    reused_segments: tuple[str, ...]
    timeline: list
    warnings: tuple[str, ...] = ()      # what the caller found stale or out of date (agent.cut.render_warnings)


class RenderCancelled(StoryreelError):
    """The render was stopped before it finished; cached segments are kept for the next run."""


# --------------------------------------------------------------------------- hashing

_FILE_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """Content hash, memoised on (path, size, mtime) within the process."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        if key in _FILE_HASHES:
            return _FILE_HASHES[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    with _HASH_LOCK:
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]


def shot_fingerprint(shot: ShotSpec) -> dict:
    """Everything about a shot that changes its pixels, with files replaced by content hashes."""
    d = asdict(shot)
    d["panel"] = file_sha256(shot.panel)
    d["layers"] = {k: file_sha256(p) for k, p in sorted(shot.layers.items())}
    d["variants"] = {k: file_sha256(p) for k, p in sorted(shot.variants.items())}
    d["clip"] = [file_sha256(p) for p in shot.clip]
    # the mouth follows the takes only when someone speaks; otherwise takes do not touch the picture
    d["takes"] = ([(file_sha256(t.wav), t.start, file_sha256(t.visemes) if t.visemes else None, t.speaker)
                   for t in shot.takes] if shot.speakers and shot.layers else [])
    if not shot.burn_captions:  # the captions go to the SRT/VTT only
        d["captions"] = []
    d.pop("transition_in")      # belongs to the transition segment, not the shot's pixels
    d.pop("transition_s")
    for key, default in (("offset_s", 0.0), ("source_duration", 0.0), ("cold_open", False)):
        if d.get(key) == default:   # a whole shot keeps the key it had before pieces existed
            d.pop(key, None)
    return d


def _episode_fingerprint(spec: EpisodeSpec) -> dict:
    font = spec.font
    if font is None:
        from tools.render.captions import find_caption_font

        texts = "".join(c.text for s in spec.shots for c in s.captions)
        font = find_caption_font(spec.language, texts) if texts.strip() else None
    return {"v": RENDERER_VERSION, "fps": spec.fps, "w": spec.width, "h": spec.height, "preset": spec.preset,
            "crf": spec.crf, "language": spec.language, "font": file_sha256(font) if font else None}


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def plan_segments(spec: EpisodeSpec, plan: list[ShotFrames]) -> list[Segment]:
    """Shot bodies and transitions in timeline order, each with its cache key."""
    ep = _episode_fingerprint(spec)
    prints = [shot_fingerprint(s) for s in spec.shots]
    segs: list[Segment] = []
    for f in plan:
        shot = spec.shots[f.index]
        if f.overlap_in:
            prev = plan[f.index - 1]
            key = _digest({"ep": ep, "kind": "transition", "type": shot.transition_in,
                           "a": prints[f.index - 1], "a_len": prev.length, "a_from": f.start - prev.start,
                           "b": prints[f.index], "b_len": f.length, "frames": f.overlap_in})
            segs.append(Segment(key, "transition", f.index, f.start, f.start + f.overlap_in,
                                f"transition:{spec.shots[f.index - 1].shot_id}->{shot.shot_id}"))
        a, b = f.body
        if b > a:
            key = _digest({"ep": ep, "kind": "shot", "shot": prints[f.index], "len": f.length,
                           "from": a - f.start, "to": b - f.start})
            segs.append(Segment(key, "shot", f.index, a, b, f"shot:{shot.shot_id}"))
    return segs


# --------------------------------------------------------------------------- frame makers


class _ShotPictures:
    """Prepared motion + captions per shot, shared by the segments that need them, dropped after."""

    def __init__(self, spec: EpisodeSpec, plan: list[ShotFrames], todo: list[Segment]) -> None:
        self.spec, self.plan = spec, plan
        self._users: dict[int, int] = {}
        for s in todo:
            for i in ((s.shot - 1, s.shot) if s.kind == "transition" else (s.shot,)):
                self._users[i] = self._users.get(i, 0) + 1
        self._ready: dict[int, tuple] = {}
        self._locks = {i: threading.Lock() for i in self._users}

    def get(self, i: int):
        from tools.render.captions import CaptionTrack
        from tools.render.motion import CameraMotion, ClipMotion

        with self._locks[i]:
            if i not in self._ready:
                spec, shot = self.spec, self.spec.shots[i].source()   # a piece runs on its shot's clock
                motion_cls = ClipMotion if shot.clip else CameraMotion
                self._ready[i] = (motion_cls(shot, spec.width, spec.height, spec.fps),
                                  CaptionTrack(shot.captions if shot.burn_captions else (), spec.width,
                                               spec.height, spec.font, spec.language))
            return self._ready[i]

    def release(self, i: int) -> None:
        with self._locks[i]:
            self._users[i] -= 1
            if self._users[i] == 0:
                self._ready.pop(i, None)

    def picture(self, i: int, n: int, out=None):
        """I420 frame of shot i at absolute frame n (captions burned in), into ``out`` when given."""
        motion, captions = self.get(i)
        t = (n - self.plan[i].start) / self.spec.fps + self.spec.shots[i].offset_s
        buf = motion.frame_i420(t, out)
        captions.apply_i420(buf, t)
        return buf


def _render_run(run: list[Segment], spec: EpisodeSpec, pics: _ShotPictures, path_of: dict[str, Path],
                cancel: threading.Event, done: Callable[[Segment], None]) -> None:
    """Consecutive segments through one encoder run (one file per segment). ``done`` is called for a
    segment once its file is complete and in the cache (fsync'd and renamed), not merely fed: what
    was reported done survives a kill."""
    from tools.render.encode import SegmentEncoder
    from tools.render.motion import blend_transition

    parts = [(path_of[s.key], s.frames) for s in run]
    released: set[int] = set()
    reported = 0
    enc = SegmentEncoder(parts[0][0], spec.width, spec.height, spec.fps, spec.preset, spec.crf, parts=parts)

    def report_cached() -> None:
        nonlocal reported
        for index in enc.harvested[reported:]:
            done(run[index])
        reported = len(enc.harvested)

    try:
        scratch = None
        for k, seg in enumerate(run):
            for n in range(seg.start, seg.end):
                if cancel.is_set():
                    raise RenderCancelled(f"render stopped during {seg.label}")
                if n == seg.start + seg.frames // 2:
                    crash_point("mid-render-segment")
                if seg.kind == "shot":
                    enc.write(pics.picture(seg.shot, n, enc.buffer()))
                else:
                    if scratch is None:
                        scratch = (enc.buffer(), enc.buffer())
                    p = (n - seg.start + 0.5) / seg.frames
                    kind = spec.shots[seg.shot].transition_in
                    a, b = pics.picture(seg.shot - 1, n, scratch[0]), pics.picture(seg.shot, n, scratch[1])
                    enc.write(blend_transition(kind, a, b, p, spec.height, spec.width, enc.buffer()))
            for i in ((seg.shot - 1, seg.shot) if seg.kind == "transition" else (seg.shot,)):
                pics.release(i)
            released.add(k)
            enc.part_fed()
            enc.harvest(limit=enc.fed)
            report_cached()
    except BaseException:
        enc.abort()
        raise
    else:
        enc.close()
        report_cached()
    finally:
        for k, seg in enumerate(run):
            if k not in released:
                for i in ((seg.shot - 1, seg.shot) if seg.kind == "transition" else (seg.shot,)):
                    pics.release(i)


def _runs(segs: list[Segment], todo: list[Segment], jobs: int) -> list[list[Segment]]:
    """Group the segments to render into runs of neighbours (one encoder each); with several jobs,
    long runs are cut so that the jobs have work to share."""
    index = {s.key: i for i, s in enumerate(segs)}
    runs: list[list[Segment]] = []
    for seg in todo:
        if runs and index[seg.key] == index[runs[-1][-1].key] + 1:
            runs[-1].append(seg)
        else:
            runs.append([seg])
    if jobs > 1:
        size = max(1, -(-len(todo) // jobs))
        runs = [run[i:i + size] for run in runs for i in range(0, len(run), size)]
    return runs


# --------------------------------------------------------------------------- cached side products


def _audio_key(spec: EpisodeSpec, plan: list[ShotFrames]) -> str:
    """The mix depends on takes, their places, the bed and the levels, not on pictures or captions."""
    return _digest({"v": RENDERER_VERSION, "fps": spec.fps, "plan": [(f.start, f.length) for f in plan],
                    "takes": [[(file_sha256(t.wav), t.start) for t in s.takes] for s in spec.shots],
                    **({"pieces": [(s.offset_s, s.duration) for s in spec.shots]}
                       if any(s.is_piece for s in spec.shots) else {}),
                    "music": file_sha256(spec.music) if spec.music else None,
                    "levels": (spec.music_gain_db, spec.duck_db, spec.target_lufs, spec.true_peak_db)})


def _contact_sheet(spec: EpisodeSpec, plan: list[ShotFrames], cache_dir: Path, out: Path) -> Path:
    """The storyboard sheet, drawn only when panels, ids, lengths or moves changed."""
    import shutil

    from tools.render.exports import write_contact_sheet

    key = _digest({"v": RENDERER_VERSION, "lang": spec.language, "w": spec.width, "h": spec.height,
                   "shots": [(s.shot_id, file_sha256(s.panel), f.length, s.camera_move)
                             for s, f in zip(spec.shots, plan)]})
    cached = cache_dir / "sheets" / f"{key}.png"
    if not cached.is_file():
        cached.parent.mkdir(exist_ok=True)
        write_contact_sheet(spec, cached)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part.png")
    shutil.copyfile(cached, tmp)
    tmp.replace(out)
    return out


# --------------------------------------------------------------------------- leftovers of killed renders

#: temporaries a render writes: run folders, side folders, concat lists, mixes (pid first) ...
_TEMP_WITH_PID = re.compile(r"^\.(?:run|side|concat|mix)-(\d+)-")
#: ... and files being written under a temporary name (``.<name>.<pid>[.<thread>].part<suffix>``)
_PART_WITH_PID = re.compile(r"^\..*?\.(\d+)\.(?:\d+\.)?part(?:\.|$)")


def _pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def clean_leftovers(out_dir: Path, cache_dir: Path) -> tuple[list[Path], list[Path]]:
    """Tidy what killed renders left: segments their ffmpeg finished are rescued into the cache
    (``encode.recover_run``), and every temporary of a process that is gone is removed (run and side
    folders, concat lists, mixes, ``*.part*`` files). Temporaries of this process and of live ones
    are left alone, so two renders sharing a cache never delete each other's work.
    Returns (segments recovered, temporaries removed)."""
    import shutil

    from tools.render.encode import MANIFEST, recover_run

    recovered: list[Path] = []
    removed: list[Path] = []
    folders = [Path(out_dir), Path(cache_dir), Path(cache_dir) / "segments", Path(cache_dir) / "audio",
               Path(cache_dir) / "sheets"]
    for folder in folders:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for path in entries:
            name = path.name
            match = _TEMP_WITH_PID.match(name) or _PART_WITH_PID.match(name)
            if not match:
                continue
            pid = int(match.group(1))
            if pid == os.getpid() or _pid_alive(pid):
                continue
            if name.startswith(".run-") and path.is_dir():
                try:
                    ffmpeg_pid = int(json.loads((path / MANIFEST).read_text()).get("ffmpeg_pid", 0))
                except (OSError, ValueError, AttributeError):
                    ffmpeg_pid = 0
                if _pid_alive(ffmpeg_pid):      # its encoder is still closing the parts it has
                    continue
                recovered += recover_run(path)
            elif path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return recovered, removed


# --------------------------------------------------------------------------- the entry point


def default_jobs() -> int:
    """Segments encoded at once. x264's own threads already fill two cores: measured on 2 cores, two
    at once was no faster than one and held a second encoder's ~300 MB, so one unless
    STORYREEL_RENDER_JOBS says otherwise (more cores: cores // 2)."""
    env = os.environ.get("STORYREEL_RENDER_JOBS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def render_episode(spec: EpisodeSpec, out_dir: Path, cache_dir: Path, *, progress: Progress | None = None,
                   jobs: int | None = None) -> RenderResult:
    """Render ``spec`` to ``out_dir/episode.mp4`` (+ .srt, .vtt, timeline.otio, contact_sheet.png),
    reusing segments found in ``cache_dir``. Inputs are checked before any work; the previous
    episode file stays in place until the new one is complete."""
    from tools.render import exports
    from tools.render.audio_mix import mix_episode_audio
    from tools.render.encode import encode_audio, ffmpeg_exe, join_and_mux

    validate_spec(spec)
    out_dir, cache_dir = Path(out_dir), Path(cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seg_dir = cache_dir / "segments"
    seg_dir.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out_dir, cache_dir)          # a killed render's finished segments are kept
    report = progress or (lambda f, m: None)
    ffmpeg = ffmpeg_exe()
    plan = frame_plan(spec)
    segs = plan_segments(spec, plan)
    path_of = {s.key: seg_dir / f"{s.key}.mp4" for s in segs}
    todo = [s for s in segs if not path_of[s.key].is_file()]
    reused = tuple(s.label for s in segs if path_of[s.key].is_file())
    total = sum(s.frames for s in todo) or 1
    report(0.0, f"{len(todo)} of {len(segs)} segments to render, {len(reused)} reused")

    cancel = threading.Event()
    pics = _ShotPictures(spec, plan, todo)
    work_id = f"{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
    (cache_dir / "audio").mkdir(exist_ok=True)
    audio_m4a = cache_dir / "audio" / f"{_audio_key(spec, plan)}.m4a"
    audio_wav = cache_dir / "audio" / f".mix-{work_id}.wav"
    list_file = cache_dir / f".concat-{work_id}.txt"

    def make_audio() -> None:
        if audio_m4a.is_file():
            return
        mix_episode_audio(spec, audio_wav, ffmpeg)
        encode_audio(audio_wav, audio_m4a)

    side_dir = cache_dir / f".side-{work_id}"

    def make_side_products() -> tuple[Path, Path, Path, Path]:
        """Captions, timeline and contact sheet, drawn while the frames encode; they replace the
        previous ones only after the new episode.mp4 is in place."""
        side_dir.mkdir(parents=True, exist_ok=True)
        return (exports.write_srt(spec, side_dir / "episode.srt"), exports.write_vtt(spec, side_dir / "episode.vtt"),
                exports.write_otio(spec, side_dir / "timeline.otio"),
                _contact_sheet(spec, plan, cache_dir, side_dir / "contact_sheet.png"))

    pool = ThreadPoolExecutor(max_workers=(jobs or default_jobs()) + 2, thread_name_prefix="render")
    try:
        audio_job = pool.submit(make_audio)
        side_job = pool.submit(make_side_products)
        done_frames = [0]
        done_lock = threading.Lock()

        def segment_done(seg: Segment) -> None:
            with done_lock:
                done_frames[0] += seg.frames
                report(0.9 * done_frames[0] / total, f"rendered {seg.label}")

        n_jobs = jobs or default_jobs()
        futures = [pool.submit(_render_run, run, spec, pics, path_of, cancel, segment_done)
                   for run in _runs(segs, todo, n_jobs)]
        pending = {audio_job, *futures}
        while pending:          # a failure anywhere (bad music, ffmpeg) stops the render at once
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            for fut in finished:
                fut.result()
        report(0.92, "joining segments")
        mp4 = out_dir / "episode.mp4"
        join_and_mux([path_of[s.key] for s in segs], audio_m4a, mp4, list_file)
        report(0.96, "writing subtitles, timeline and contact sheet")
        srt, vtt, otio_path, sheet = (p.replace(out_dir / p.name) for p in side_job.result())
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for p in (audio_wav, list_file):
            p.unlink(missing_ok=True)
        import shutil

        shutil.rmtree(side_dir, ignore_errors=True)
    clean_leftovers(out_dir, cache_dir)
    report(1.0, "done")
    return RenderResult(mp4, srt, vtt, otio_path, sheet, total_frames(plan) / spec.fps,
                        tuple(s.label for s in todo), reused, timeline(spec))
