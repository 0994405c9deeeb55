"""Run context: the backends and stores a graph run uses, passed in (never checkpointed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.llm import ChatModel
    from memory.bible import Bible
    from memory.canon import Canon
    from memory.ledger import Ledger
    from tools.backends.protocols import PanelPainter


@dataclass(frozen=True)
class Targets:
    """How much the writers' room proposes before it waits for the director."""

    characters: int = 2
    locations: int = 2
    props: int = 1
    episodes: int = 5
    scenes: int = 3
    shots: int | None = None     # shots per scene plan (headless `make --shots N`); None: as planned


@dataclass
class DirectorContext:
    canon: Canon
    bible: Bible
    ledger: Ledger
    llm: ChatModel
    targets: Targets = field(default_factory=Targets)
    retrieval_k: int = 6
    repair_retries: int = 2
    project_root: Path = Path(".")
    painter: PanelPainter | None = None      # None: the storyboard slice is off (writers' room only)
    candidates: int = 2                      # panel candidates per proposal
    loras: dict[str, str] = field(default_factory=dict)   # character id -> LoRA, when configured
    voices: Any = None                       # VoiceBackends (synth_for(profile)); None: voices slice off
    animator: Any = None                     # image-to-video backend (DiffusersMotion); None: camera moves
    clip_frames: int = 16
