"""Run context: the backends and stores a graph run uses, passed in (never checkpointed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.errors import InputError
from memory.project import DEFAULT_TARGETS, Project

if TYPE_CHECKING:
    from agent.llm import ChatModel
    from memory.bible import Bible
    from memory.canon import Canon
    from memory.ledger import Ledger
    from tools.backends.protocols import PanelPainter


@dataclass(frozen=True)
class Targets:
    """How much the writers' room proposes before it waits for the director.

    Stored in project.toml's [targets] when the project is created (memory.project.DEFAULT_TARGETS,
    or make's own), so every front end plans the same series; `from_settings` reads them back.
    """

    characters: int = DEFAULT_TARGETS["characters"]
    locations: int = DEFAULT_TARGETS["locations"]
    props: int = DEFAULT_TARGETS["props"]
    episodes: int = DEFAULT_TARGETS["episodes"]
    scenes: int = DEFAULT_TARGETS["scenes"]
    shots: int | None = None     # shots per scene plan (headless `make --shots N`); None: as planned
    min_episodes: int = 1        # the fewest episodes an outline may have (`make --episodes N` needs N)

    @classmethod
    def from_settings(cls, settings: dict | None) -> Targets:
        """The project's [targets] table (missing keys: the defaults); InputError names a bad value."""
        raw = (settings or {}).get("targets") or {}
        if not isinstance(raw, dict):
            raise InputError(f"project.toml targets = {raw!r} must be a table; write it as a [targets] "
                             "section, e.g. characters = 2, locations = 2, scenes = 3")
        table = dict(raw)
        limits = {"characters": (0, 12), "locations": (0, 12), "props": (0, 12), "episodes": (1, 12),
                  "scenes": (1, 20), "shots": (0, 12)}
        unknown = sorted(set(table) - set(limits))
        if unknown:
            raise InputError(f"project.toml [targets] has unknown keys {unknown}; use {', '.join(limits)}")
        values: dict[str, int | None] = {}
        for key, value in table.items():
            low, high = limits[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InputError(f"project.toml [targets] {key} = {value!r}: use a whole number from "
                                 f"{low} to {high}")
            values[key] = value
        if not values.get("shots"):
            values["shots"] = None   # 0 or absent: as the shot plan decides
        return cls(**values)  # type: ignore[arg-type]

    def as_settings(self) -> dict[str, int]:
        """The [targets] table to write into project.toml."""
        table = {"characters": self.characters, "locations": self.locations, "props": self.props,
                 "episodes": self.episodes, "scenes": self.scenes}
        return {**table, "shots": self.shots} if self.shots else table


def as_project(where: Project | Path | str) -> Project:
    """The project that resolves paths under `where` (a Project, or its root folder)."""
    if isinstance(where, Project):
        return where
    root = Path(where)
    return Project(root=root, name=root.name)


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
    project: Project | None = None           # the one path resolver; default: a Project at project_root
    job_runner: Any = None                   # tools.jobs.JobRunner: pictures are drafted as jobs (the card
                                             # shows them drafting); None: painted inside the graph step
    renderer: Any = None                     # EpisodeRenderer (agent.tools.actions): the `render` tool starts
                                             # the studio's background render job; None: renders at once
    branches: Any = None                     # BranchDesk (agent.tools.branches): the session's branches for
                                             # the branch tools; None: no session (make, tests), refused

    def __post_init__(self) -> None:
        if self.project is None:
            self.project = as_project(self.project_root)
        self.project_root = self.project.root

    def path(self, rel: str | Path) -> Path:
        """A stored, decided or model-made path as a real path inside the project.

        PathOutsideProjectError (naming the path) for anything absolute outside it, with '..', NUL,
        or a symlink out of it: nothing from a decision or a model reaches other files.
        """
        assert self.project is not None
        return self.project.resolve(rel)

    def rel(self, path: str | Path) -> str:
        """The posix path of a file the app wrote, relative to the project, for state and canon."""
        assert self.project is not None
        return self.project.relative(path)
