"""Run context: the backends and stores a graph run uses, passed in (never checkpointed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.llm import ChatModel
    from memory.bible import Bible
    from memory.canon import Canon
    from memory.ledger import Ledger


@dataclass(frozen=True)
class Targets:
    """How much the writers' room proposes before it waits for the director."""

    characters: int = 2
    locations: int = 2
    props: int = 1
    episodes: int = 5
    scenes: int = 3


@dataclass
class DirectorContext:
    canon: Canon
    bible: Bible
    ledger: Ledger
    llm: ChatModel
    targets: Targets = field(default_factory=Targets)
    retrieval_k: int = 6
    repair_retries: int = 2
