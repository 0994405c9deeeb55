"""Render engine pieces without encoding: timeline, motion, limited animation, captions, audio."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from memory.errors import InputError
from tools.render.spec import (
    CaptionCue,
    EpisodeSpec,
    ShotSpec,
    TakeCue,
    episode_duration,
    frame_plan,
    timeline,
)

W, H, FPS = 270, 480, 24


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    from tools.render.synthetic import make_character_layers, make_panel, speech_like, write_wav

    d = tmp_path_factory.mktemp("media")
    for i in range(3):
        make_panel(d / f"p{i}.png", i, W, H)
    make_character_layers(d, "aki", W, H)
    write_wav(d / "take.wav", speech_like(2.0, seed=3))
    return d


def _shot(media: Path, i: int, **kw) -> ShotSpec:
    return ShotSpec(f"s{i}", media / f"p{i}.png", kw.pop("duration", 2.0), **kw)


# --------------------------------------------------------------------------- timeline


def test_timeline_overlaps_by_incoming_transition(media):
    spec = EpisodeSpec((_shot(media, 0), _shot(media, 1, transition_in="crossfade", transition_s=0.5),
                        _shot(media, 2, transition_in="cut")), fps=FPS, width=W, height=H)
    assert timeline(spec) == [("s0", 0.0, 2.0), ("s1", 1.5, 2.0), ("s2", 3.5, 2.0)]
    assert episode_duration(spec) == pytest.approx(6.0 - 0.5)
    plan = frame_plan(spec)
    assert (plan[0].overlap_out, plan[1].overlap_in, plan[1].body) == (12, 12, (48, 84))


def test_first_shot_transition_is_ignored_and_overlap_capped(media):
    spec = EpisodeSpec((_shot(media, 0, transition_in="dip"), _shot(media, 1, duration=0.5, transition_in="slide",
                                                                       transition_s=2.0)), fps=FPS, width=W, height=H)
    plan = frame_plan(spec)
    assert plan[0].overlap_in == 0
    assert plan[1].overlap_in == 6          # at most half of the shorter neighbour (12 frames)


def test_missing_panel_names_shot_and_path(media, tmp_path):
    from tools.render import render_episode

    bad = ShotSpec("s9", media / "nope.png", 1.0)
    with pytest.raises(InputError, match=r"s9.*nope\.png"):
        render_episode(EpisodeSpec((_shot(media, 0), bad), width=W, height=H), tmp_path / "out", tmp_path / "cache")
    assert not (tmp_path / "cache").exists()     # rejected before any work


def test_zero_length_take_rejected_before_work(media, tmp_path):
    from tools.render import render_episode
    from tools.render.synthetic import write_wav

    empty = write_wav(tmp_path / "silent.wav", np.zeros(0, np.float32))
    spec = EpisodeSpec((_shot(media, 0, takes=(TakeCue(empty, 0.0),)),), width=W, height=H)
    with pytest.raises(InputError, match=r"s0.*silent\.wav.*zero length"):
        render_episode(spec, tmp_path / "out", tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------- motion


def test_push_in_changes_the_picture_and_static_does_not(media):
    from tools.render.motion import CameraMotion

    moving = CameraMotion(_shot(media, 0, camera_move="push-in"), W, H, FPS)
    still = CameraMotion(_shot(media, 0), W, H, FPS)
    a, b = moving.frame(0.0), moving.frame(1.0)
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 3
    assert np.array_equal(still.frame(0.0), still.frame(1.5))


@pytest.mark.parametrize("move", ["pan", "tilt", "shake", "pull-out"])
def test_every_move_moves_and_stays_covered(media, move):
    from tools.render.motion import CameraMotion

    m = CameraMotion(_shot(media, 1, camera_move=move, seed=3), W, H, FPS)
    frames = [m.frame(t) for t in (0.1, 0.9, 1.7)]
    assert np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 2
    for f in frames:                                  # no black borders from sampling outside the panel
        assert f[:, :2].mean() > 5 and f[:, -2:].mean() > 5


def test_grade_vignette_flash_flicker(media):
    from tools.render.motion import CameraMotion

    plain = CameraMotion(_shot(media, 0), W, H, FPS).frame(1.0).astype(int)
    warm = CameraMotion(_shot(media, 0, grade="warm"), W, H, FPS).frame(1.0).astype(int)
    assert (warm[..., 0] - warm[..., 2]).mean() > (plain[..., 0] - plain[..., 2]).mean() + 10
    night = CameraMotion(_shot(media, 0, grade="night"), W, H, FPS).frame(1.0).astype(int)
    assert night.mean() < plain.mean() - 20
    vig = CameraMotion(_shot(media, 0, vignette=True, camera_move="push-in"), W, H, FPS).frame(0.0).astype(int)
    ref = CameraMotion(_shot(media, 0, camera_move="push-in"), W, H, FPS).frame(0.0).astype(int)
    assert vig[:20, :20].mean() < ref[:20, :20].mean() - 10          # corners darker
    assert abs(vig[H // 2 - 10:H // 2 + 10, W // 2 - 10:W // 2 + 10].mean()
               - ref[H // 2 - 10:H // 2 + 10, W // 2 - 10:W // 2 + 10].mean()) < 3
    flash = CameraMotion(_shot(media, 0, flash=True), W, H, FPS)
    assert flash.frame(0.0).mean() > 200 and abs(flash.frame(1.0).mean() - plain.mean()) < 2
    fl = CameraMotion(_shot(media, 0, flicker=True, seed=5), W, H, FPS)
    means = [fl.frame(k / FPS).mean() for k in range(0, 48, 4)]
    assert max(means) - min(means) > 2


def test_transitions_blend_between_frames():
    from tools.render.motion import blend_transition, solid_i420

    a, b = solid_i420(H, W, 200), solid_i420(H, W, 40)
    assert blend_transition("crossfade", a, b, 0.5, H, W)[:H].mean() == pytest.approx(120, abs=1)
    assert blend_transition("dip", a, b, 0.5, H, W)[:H].mean() == pytest.approx(16, abs=1)
    half = blend_transition("slide", a, b, 0.5, H, W)[:H]
    assert half[:, :10].mean() == 200 and half[:, -10:].mean() == 40
    whip = blend_transition("whip", a, b, 0.7, H, W)
    assert whip.shape == a.shape


def _layered(media: Path, **kw) -> ShotSpec:
    layers = {k: media / f"aki{k[8:].replace(':', '_')}.png" for k in
              ("char:aki", "char:aki:eyes_closed", "char:aki:mouth_open")}
    return ShotSpec("lay", media / "p0.png", kw.pop("duration", 8.0),
                    layers={"backdrop": media / "p0.png", "char:aki": layers["char:aki"]},
                    variants={k: v for k, v in layers.items() if k != "char:aki"}, **kw)


def test_blinks_swap_in_the_eyes_closed_variant(media):
    from tools.render.motion import CameraMotion

    m = CameraMotion(_layered(media, seed=11), W, H, FPS)
    closed = [k for k in range(int(8 * FPS)) if m.eyes_closed("aki", k / FPS)]
    assert closed, "no blink in 8 s"
    starts = [a for a, _ in m.blinks["aki"]]
    assert all(2.0 <= b - a <= 6.0 for a, b in itertools.pairwise(starts))
    assert all(3 <= round((b - a) * FPS) <= 4 for a, b in m.blinks["aki"])
    k = closed[0]
    assert m.sprite_for("char:aki", k / FPS) == "char:aki:eyes_closed"
    open_k = next(j for j in range(k - 12, k) if j >= 0 and not m.eyes_closed("aki", j / FPS))
    eyes = slice(int(H * 0.33), int(H * 0.45))
    assert np.abs(m.frame(k / FPS)[eyes].astype(int) - m.frame(open_k / FPS)[eyes].astype(int)).max() > 50


def test_mouth_flaps_follow_the_take_envelope(media, tmp_path):
    from tools.render.motion import CameraMotion, take_envelope
    from tools.render.synthetic import RATE, write_wav

    # silence, then 1 s of loud tone bursts, then silence: the mouth moves only in the loud part
    t = np.arange(int(1.0 * RATE)) / RATE
    loud = (0.5 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    wav = write_wav(tmp_path / "line.wav", np.concatenate([np.zeros(RATE, np.float32), loud,
                                                           np.zeros(RATE, np.float32)]))
    shot = _layered(media, duration=3.0, speakers=("aki",), takes=(TakeCue(wav, 0.0),), seed=2)
    m = CameraMotion(shot, W, H, FPS)
    env = take_envelope(shot, FPS)
    flaps = np.array([m.mouth_open("aki", k / FPS) for k in range(3 * FPS)])
    assert not flaps[:FPS].any() and not flaps[2 * FPS + 2:].any()
    assert flaps[FPS:2 * FPS].sum() >= 6 and (~flaps[FPS:2 * FPS]).sum() >= 6   # opens and closes
    assert env[flaps].mean() > env[~flaps].mean() + 0.3
    k = int(np.argmax(flaps & ~np.array([m.eyes_closed("aki", j / FPS) for j in range(3 * FPS)])))
    assert m.sprite_for("char:aki", k / FPS) == "char:aki:mouth_open"
    silent = CameraMotion(_layered(media, duration=3.0, takes=(TakeCue(wav, 0.0),)), W, H, FPS)
    assert not silent.mouth_open("aki", k / FPS)          # not a speaker: no flaps


# --------------------------------------------------------------------------- captions


def test_japanese_caption_renders_real_glyphs():
    from tools.render.captions import find_caption_font, font_index, load_font

    path = find_caption_font("ja")
    font = load_font(str(path), 48, font_index(path, "ja"))
    assert font.getname()[0].endswith("JP")
    a, b = font.getmask("雨").getbbox(), font.getmask("猫").getbbox()
    assert a and b
    assert bytes(font.getmask("雨")) != bytes(font.getmask("猫"))
    assert bytes(font.getmask("雨")) != bytes(font.getmask("\U000F0000"))   # not the missing-glyph box


def test_caption_patch_sits_in_the_safe_band_and_wraps():
    from tools.render.captions import SAFE_BOTTOM, SAFE_TOP, SIDE_MARGIN, CaptionTrack
    from tools.render.motion import solid_i420

    long = "This is a long line of dialogue that has to wrap over several lines to fit the frame"
    track = CaptionTrack((CaptionCue(long, 0.5, 1.5), CaptionCue("雨が止まない。この街はいつもそうだ。", 2.0, 3.0),
                          CaptionCue("Hi.", 3.0, 4.0)),
                         W, H, None, "en")
    for p in track.patches:
        pw, ph = p.size
        assert p.y >= SAFE_TOP * H and p.y + ph <= (1 - SAFE_BOTTOM) * H
        assert pw <= W * (1 - SIDE_MARGIN * 1.5)
    assert track.patches[0].size[1] > 2 * track.patches[2].size[1] * 0.9        # the long one wrapped
    frame = solid_i420(H, W, 60)
    assert not track.apply_i420(frame, 0.2) and frame[:H].max() == 60
    assert track.apply_i420(frame, 1.0)
    band = frame[:H][track.patches[0].y:track.patches[0].y + track.patches[0].size[1]]
    assert band.max() > 200 and band.min() < 30                      # white text with a dark stroke


def test_cjk_font_missing_names_the_package(monkeypatch):
    import tools.render.captions as cap

    monkeypatch.setattr(cap, "CJK_FONT_DIRS", (Path("/nonexistent"),))
    with pytest.raises(InputError, match="fonts-noto-cjk"):
        cap.find_caption_font("ja")


# --------------------------------------------------------------------------- audio


def test_normalise_hits_loudness_and_true_peak():
    from tools.render.audio_mix import loudness_lufs, normalise, true_peak_db
    from tools.render.synthetic import speech_like

    x = np.concatenate([speech_like(4.0, seed=1) * 0.05, speech_like(2.0, seed=2) * 3.0])
    y, _, peak, _, limited = normalise(x.astype(np.float32), -14.0, -1.0)
    assert loudness_lufs(y) == pytest.approx(-14.0, abs=0.5)
    assert true_peak_db(y) <= -1.0 + 1e-3 and peak <= -1.0 + 1e-3
    assert limited


def test_ducking_lowers_music_under_dialogue():
    from tools.render.audio_mix import RATE, duck_gain

    d = np.zeros(3 * RATE, np.float32)
    d[RATE:2 * RATE] = 0.3
    g = duck_gain(d, -10.0)
    assert g[RATE // 2] == pytest.approx(1.0, abs=1e-3)
    assert 20 * np.log10(g[int(1.7 * RATE)]) == pytest.approx(-10.0, abs=0.5)
    assert g[int(1.02 * RATE)] > g[int(1.5 * RATE)]                  # attack is smoothed, not a step


def test_zero_length_take_and_non_audio_music(media, tmp_path):
    from tools.render.audio_mix import mix_episode_audio
    from tools.render.encode import ffmpeg_exe
    from tools.render.synthetic import write_wav

    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    spec = EpisodeSpec((_shot(media, 0, takes=(TakeCue(empty, 0.0),)),), width=W, height=H)
    with pytest.raises(InputError, match=r"s0.*empty\.wav.*zero length"):
        mix_episode_audio(spec, tmp_path / "mix.wav", ffmpeg_exe())
    junk = tmp_path / "music.mp3"
    junk.write_text("this is not audio at all")
    spec = EpisodeSpec((_shot(media, 0),), width=W, height=H, music=junk)
    with pytest.raises(InputError, match=r"music\.mp3.*not audio"):
        mix_episode_audio(spec, tmp_path / "mix.wav", ffmpeg_exe())
