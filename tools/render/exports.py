"""Side files of a render: SRT and WebVTT subtitles, an OpenTimelineIO timeline, a contact sheet.

All times come from the same frame plan as the video (see ``tools.render.spec``): a caption at
``cue.start`` in shot *i* is at ``timeline_start(i) + cue.start`` in the episode, clipped to the shot.

OTIO layout: on track "V1" shot *i* is a Clip covering [start_i, start_{i+1}) — its incoming
transition is at its head, and where the next shot fades in, a Transition with ``out_offset`` = the
overlap says the outgoing shot keeps playing that long past the cut. So clip duration + out_offset
is the shot's full duration, and the track lasts exactly as long as the episode.

A piece of a shot (a cold open's pick, ``ShotSpec.is_piece``) is a clip of its own with
``cold_open: true`` and its ``source_in``/``source_out`` in its metadata; its captions and takes are
shifted by ``offset_s`` and cut to the piece.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tools.render.spec import EpisodeSpec, frame_plan, total_frames


@dataclass(frozen=True)
class TimedCaption:
    index: int
    start: float
    end: float
    text: str
    speaker: str
    shot_id: str


def episode_captions(spec: EpisodeSpec) -> list[TimedCaption]:
    """Every caption with absolute episode times, in time order: long lines split as they are burned
    in (``captions.split_cues``), whether or not the picture burns them (a speech bubble instead)."""
    from tools.render.captions import split_cues

    out = []
    for f, shot in zip(frame_plan(spec), spec.shots):
        s0, s1 = f.start / spec.fps, (f.start + f.length) / spec.fps
        for cue in split_cues(shot.captions):   # a piece's cues are on its shot's clock
            a, b = max(s0, s0 + cue.start - shot.offset_s), min(s1, s0 + cue.end - shot.offset_s)
            if b > a and cue.text.strip():
                out.append((a, b, cue.text, cue.speaker, shot.shot_id))
    out.sort(key=lambda c: (c[0], c[1]))
    return [TimedCaption(i + 1, *c) for i, c in enumerate(out)]


def _atomic_write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def write_srt(spec: EpisodeSpec, path: Path) -> Path:
    blocks = [f"{c.index}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text.strip()}\n"
              for c in episode_captions(spec)]
    return _atomic_write_text(path, "\n".join(blocks))


def write_vtt(spec: EpisodeSpec, path: Path) -> Path:
    blocks = ["WEBVTT\n"]
    for c in episode_captions(spec):
        text = c.text.strip().replace("-->", "->")
        if c.speaker:
            text = f"<v {c.speaker}>{text}"
        blocks.append(f"{c.index}\n{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{text}\n")
    return _atomic_write_text(path, "\n".join(blocks))


def build_otio(spec: EpisodeSpec):
    """The cut as an OpenTimelineIO Timeline (video track of shots, audio tracks of takes)."""
    import opentimelineio as otio
    import soundfile as sf

    fps = spec.fps
    rt = otio.opentime.RationalTime
    tr = otio.opentime.TimeRange
    plan = frame_plan(spec)
    tl = otio.schema.Timeline(name=spec.title or "episode")
    tl.global_start_time = rt(0, fps)
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    takes: list[tuple[float, float, str, str, float]] = []
    for f, shot in zip(plan, spec.shots):
        visible = f.length - f.overlap_out
        if f.overlap_in:
            video.append(otio.schema.Transition(
                name=f"{shot.transition_in}:{shot.shot_id}",
                transition_type=(otio.schema.TransitionTypes.SMPTE_Dissolve
                                 if shot.transition_in in ("crossfade", "dip") else "Custom_Transition"),
                in_offset=rt(0, fps), out_offset=rt(f.overlap_in, fps),
                metadata={"storyreel": {"type": shot.transition_in, "frames": f.overlap_in}}))
        take_meta = []
        off = shot.offset_s
        for take in shot.takes:
            info = sf.info(str(take.wav))
            length = info.frames / info.samplerate
            skip = 0.0
            if shot.is_piece:   # only the stretch of the take inside the piece
                skip = max(0.0, off - take.start)
                length = min(take.start + length, off + f.length / fps) - max(take.start, off)
                if length <= 1e-6:
                    continue
            take_meta.append({"wav": str(take.wav), "start": take.start, "duration": length})
            takes.append((f.start / fps + take.start - off + skip, length, str(take.wav), shot.shot_id,
                          take.start, skip))
        clip = otio.schema.Clip(
            name=shot.shot_id,
            media_reference=otio.schema.ExternalReference(
                target_url=Path(shot.panel).as_uri(), available_range=tr(rt(0, fps), rt(f.length, fps))),
            source_range=tr(rt(0, fps), rt(visible, fps)),
            metadata={"storyreel": {
                "shot_id": shot.shot_id, "duration_frames": f.length, "start_frame": f.start,
                "camera_move": shot.camera_move, "transition_in": shot.transition_in if f.overlap_in else "cut",
                "captions": [{"text": c.text, "start": c.start, "end": c.end, "speaker": c.speaker}
                             for c in shot.captions],
                "takes": take_meta,
                **({"cold_open": True} if shot.cold_open else {}),
                **({"source_in": off, "source_out": round(off + f.length / fps, 3)} if shot.is_piece else {})}})
        for cue in shot.captions:
            a = max(0.0, cue.start - off) * fps
            b = min(f.length, (cue.end - off) * fps)
            if b > a:
                clip.markers.append(otio.schema.Marker(
                    name=cue.text, marked_range=tr(rt(a, fps), rt(b - a, fps)),
                    metadata={"storyreel": {"caption": cue.text, "speaker": cue.speaker}}))
        video.append(clip)
    tl.tracks.append(video)
    # takes: as many audio tracks as needed so that no two overlap on one track
    lanes: list[tuple[object, float]] = []
    for start, length, wav, shot_id, rel, skip in sorted(takes):
        lane = next((i for i, (_, end) in enumerate(lanes) if end <= start + 1e-9), None)
        if lane is None:
            lanes.append((otio.schema.Track(name=f"A{len(lanes) + 1}", kind=otio.schema.TrackKind.Audio), 0.0))
            lane = len(lanes) - 1
        track, end = lanes[lane]
        if start > end:
            track.append(otio.schema.Gap(source_range=tr(rt(0, fps), rt((start - end) * fps, fps))))
        track.append(otio.schema.Clip(
            name=Path(wav).stem,
            media_reference=otio.schema.ExternalReference(
                target_url=Path(wav).as_uri(), available_range=tr(rt(0, fps), rt((skip + length) * fps, fps))),
            source_range=tr(rt(skip * fps, fps), rt(length * fps, fps)),
            metadata={"storyreel": {"shot_id": shot_id, "start_in_shot": rel}}))
        lanes[lane] = (track, start + length)
    for track, _ in lanes:
        tl.tracks.append(track)
    tl.metadata["storyreel"] = {
        "fps": fps, "width": spec.width, "height": spec.height,
        "duration_frames": total_frames(plan), "music": str(spec.music) if spec.music else None,
        "captions": [{"start": c.start, "end": c.end, "text": c.text, "speaker": c.speaker, "shot_id": c.shot_id}
                     for c in episode_captions(spec)]}
    return tl


def write_otio(spec: EpisodeSpec, path: Path) -> Path:
    import opentimelineio as otio

    return _atomic_write_text(path, otio.adapters.write_to_string(build_otio(spec), "otio_json"))


def write_contact_sheet(spec: EpisodeSpec, path: Path, columns: int = 5, thumb_w: int = 216) -> Path:
    """A storyboard grid: each panel's thumbnail with its shot id and duration."""
    from PIL import Image, ImageDraw

    from tools.render.captions import find_caption_font, load_font

    thumb_h = round(thumb_w * spec.height / spec.width)
    label_h = 44
    rows = -(-len(spec.shots) // columns)
    pad = 12
    sheet = Image.new("RGB", (columns * (thumb_w + pad) + pad, rows * (thumb_h + label_h + pad) + pad),
                      (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    ids = "".join(s.shot_id for s in spec.shots)
    font = load_font(str(find_caption_font(spec.language, ids)), 16)
    for k, (f, shot) in enumerate(zip(frame_plan(spec), spec.shots)):
        x = pad + (k % columns) * (thumb_w + pad)
        y = pad + (k // columns) * (thumb_h + label_h + pad)
        with Image.open(shot.panel) as im:
            im = im.convert("RGB")
            im.thumbnail((thumb_w, thumb_h))
            sheet.paste(im, (x + (thumb_w - im.width) // 2, y + (thumb_h - im.height) // 2))
        draw.text((x, y + thumb_h + 4), f"{shot.shot_id}", fill=(240, 240, 240), font=font)
        draw.text((x, y + thumb_h + 23), f"{f.length / spec.fps:.2f}s  {shot.camera_move}",
                  fill=(170, 170, 180), font=font)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part.png")
    sheet.save(tmp)
    tmp.replace(path)
    return path
