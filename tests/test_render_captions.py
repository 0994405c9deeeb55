"""Caption splitting: a long line becomes consecutive captions of at most 2 lines of ~42 characters,
timed in proportion to their characters; burned captions, SRT and VTT use the same split."""
from __future__ import annotations

import itertools

import pytest

from tools.render.captions import (
    MAX_LINE_CHARS,
    MAX_LINES,
    caption_lines,
    split_caption_text,
    split_cues,
    text_width,
)
from tools.render.spec import CaptionCue

LONG = ("The snow woman bent over Minokichi and breathed on him, and her breath was like a bright white "
        "smoke, and he knew that she would kill him if he ever spoke of her.")


@pytest.mark.parametrize("text, expected", [
    ("Hi.", ["Hi."]),
    ("", []),
    ("   ", []),
    ("Do you hear that?", ["Do you hear that?"]),
    # exactly one full line, then one word more: two lines in one caption
    ("a" * 10 + " " + "b" * 31, ["a" * 10 + " " + "b" * 31]),
    ("a" * 10 + " " + "b" * 31 + " c", ["a" * 10 + " " + "b" * 31 + "\nc"]),
    # 81 characters fit one caption of two lines
    ("Where were you when the lanterns went out, and why did nobody come to the shrine?",
     ["Where were you when the lanterns went out,\nand why did nobody come to the shrine?"]),
    # just too long for one caption: two balanced captions, no orphan word
    ("Where were you when the lanterns went out, and why did nobody come to the shrine gate?",
     ["Where were you when the\nlanterns went out, and", "why did nobody come to\nthe shrine gate?"]),
    # a word longer than a line is cut by characters
    ("x" * 50, ["x" * 42 + "\n" + "x" * 8]),
    # CJK: a wide character counts as two cells, no spaces needed
    ("雨が止まない。この街はいつもそうだ。", ["雨が止まない。この街はいつもそうだ。"]),
    ("雨" * 30, ["雨" * 21 + "\n" + "雨" * 9]),
    # a line break the text already has is kept
    ("one\ntwo", ["one\ntwo"]),
])
def test_split_caption_text_table(text, expected):
    assert split_caption_text(text) == expected


def test_every_caption_of_a_long_line_fits_two_lines_and_keeps_every_word():
    parts = split_caption_text(LONG)
    assert len(parts) >= 2
    for part in parts:
        lines = part.split("\n")
        assert 1 <= len(lines) <= MAX_LINES
        assert all(text_width(line) <= MAX_LINE_CHARS for line in lines)
    assert " ".join(" ".join(p.split("\n")) for p in parts) == LONG


def test_caption_lines_never_exceed_the_width():
    for width in (10, 20, 42):
        assert all(text_width(line) <= width for line in caption_lines(LONG, width))


def test_split_cues_time_the_parts_in_proportion_to_their_characters():
    cue = CaptionCue(LONG, 1.0, 9.0, "Yuki")
    parts = split_cues((cue, CaptionCue("Hi.", 9.5, 10.0), CaptionCue("  ", 10.0, 11.0)))
    long_parts, tail = parts[:-1], parts[-1]
    assert tail == CaptionCue("Hi.", 9.5, 10.0)                     # short cues pass through unchanged
    assert long_parts[0].start == 1.0 and long_parts[-1].end == 9.0
    for a, b in itertools.pairwise(long_parts):
        assert a.end == pytest.approx(b.start)                      # consecutive, no gap, no overlap
    chars = [text_width(p.text.replace("\n", " ")) for p in long_parts]
    for part, n in zip(long_parts, chars):
        assert part.end - part.start == pytest.approx(8.0 * n / sum(chars))
        assert part.speaker == "Yuki"


def test_srt_and_vtt_follow_the_burned_split(tmp_path):
    import srt
    import webvtt

    from tools.render.exports import episode_captions, write_srt, write_vtt
    from tools.render.spec import EpisodeSpec, ShotSpec
    from tools.render.synthetic import make_panel

    make_panel(tmp_path / "p.png", 1, 270, 480)
    shot = ShotSpec("s1", tmp_path / "p.png", 10.0, captions=(CaptionCue(LONG, 1.0, 9.0, "Yuki"),),
                    burn_captions=False)
    spec = EpisodeSpec((shot,), width=270, height=480)
    expected = split_cues(shot.captions)
    assert [c.text for c in episode_captions(spec)] == [c.text for c in expected]
    subs = list(srt.parse(write_srt(spec, tmp_path / "e.srt").read_text()))
    assert [s.content for s in subs] == [c.text for c in expected]
    assert " ".join(s.content.replace("\n", " ") for s in subs) == LONG   # the line, once, in order
    cues = webvtt.read(str(write_vtt(spec, tmp_path / "e.vtt")))
    assert len(cues) == len(expected) and all(c.text.count("\n") <= 1 for c in cues)


def test_burned_caption_keeps_its_two_lines_and_shrinks_rather_than_wrapping_further():
    from tools.render.captions import CaptionTrack, render_caption_rgba

    track = CaptionTrack((CaptionCue(LONG, 0.0, 8.0),), 1080, 1920, None, "en")
    assert len(track.patches) == len(split_caption_text(LONG))
    one_line = track.patches[0].size[1]
    from tools.render.captions import find_caption_font
    single = render_caption_rgba("Hi.", 1080, find_caption_font("en"), "en")
    assert one_line < 2.6 * single.height                             # two lines, never six
    for patch in track.patches:
        assert patch.size[0] <= 1080
