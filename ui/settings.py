"""The one frozen settings object, built at the entry point from flags, environment and project.toml."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.context import Targets

if TYPE_CHECKING:
    from agent.llm import LLMSettings
    from memory.project import Project


def default_projects_dir() -> Path:
    env = os.environ.get("STORYREEL_HOME")
    return Path(env).expanduser() if env else Path.home() / "storyreel-projects"


@dataclass(frozen=True)
class Settings:
    projects_dir: Path
    project_name: str | None = None          # a name under projects_dir, or a folder path
    host: str = "127.0.0.1"
    port: int = 7860
    llm_url: str | None = None               # command-line overrides of the LLM settings
    llm_model: str | None = None
    targets: Targets = field(default_factory=Targets)

    def project_path(self, name: str | None = None) -> Path:
        """A project argument is a folder when it holds a project.toml, else a name under projects_dir."""
        from memory.project import slugify_project_name

        name = name or self.project_name
        if not name:
            raise ValueError("no project given")
        as_path = Path(name).expanduser()
        if (as_path / "project.toml").exists() or as_path.is_absolute():
            return as_path
        return self.projects_dir / slugify_project_name(name)

    def open_project(self, name: str | None = None) -> Project:
        from memory.project import open_project

        return open_project(self.project_path(name))

    def llm_settings(self, project: Project | None) -> LLMSettings:
        from dataclasses import replace

        from agent.llm import settings_from_env

        llm = settings_from_env(dict(project.settings.get("llm", {})) if project else None)
        if self.llm_url:
            llm = replace(llm, base_url=self.llm_url)
        if self.llm_model:
            llm = replace(llm, model=self.llm_model)
        return llm


def build_settings(args: argparse.Namespace) -> Settings:
    return Settings(
        projects_dir=(args.projects_dir or default_projects_dir()).expanduser(),
        project_name=(None if args.command == "make" else getattr(args, "project", None)) or getattr(args, "name", None),
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", 7860),
        llm_url=getattr(args, "llm_url", None),
        llm_model=getattr(args, "llm_model", None),
    )
