"""What a voice engine is given to say: a line's words without the marks a model leaves in text.

Models write dialogue with markdown and markup (``*emphasis*``, ``snake_case_names``, ``[brackets]``,
``# headings``); read aloud, an engine says "asterisk" and Whisper hears it. `speakable` turns those
marks into spaces, so the take, its mouth track and the ear check all work on the same words.
"""
from __future__ import annotations

import re

_MARKS = re.compile(r"[*_#~`|<>\[\]{}=^\\]+")


def speakable(text: str) -> str:
    """``text`` with markdown and markup marks read as spaces ("The_Luna*Eira**" -> "The Luna Eira")."""
    spaced = " ".join(_MARKS.sub(" ", text or "").split())
    return re.sub(r"\s+([,.;:!?])", r"\1", spaced)
