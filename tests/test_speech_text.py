"""What the voice engines are given to say: markdown and markup marks from the model read as spaces."""
from __future__ import annotations

import pytest

from tools.speech_text import speakable
from tools.take_check import word_error_rate, words_of


@pytest.mark.parametrize("line, said", [
    ("Mama, maybe.", "Mama, maybe."),
    ("I *told* you!", "I told you!"),
    ("The_Luna*Eira**'", "The Luna Eira '"),
    ("[Luna*Eira*luna1982]", "Luna Eira luna1982"),
    ("# Kai: run!", "Kai: run!"),
    ("Toy Story 3D_ComingOfAge_Mascot .", "Toy Story 3D ComingOfAge Mascot."),
    ("back\\slash", "back slash"),
    ("It's ~5~ o'clock", "It's 5 o'clock"),
    ("雨が降る", "雨が降る"),
    ("", ""),
])
def test_speakable(line, said):
    assert speakable(line) == said


def test_the_ear_check_counts_the_words_that_were_said_not_the_marks():
    line = "Narrator, Toy Story 3D_ComingOfAge_Mascot. The_lunacy_ in Hollywood"
    assert words_of(line)[:5] == ["narrator", "toy", "story", "3d", "comingofage"]
    assert word_error_rate("I *told* you!", "I told you.") == 0.0
