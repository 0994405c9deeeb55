"""The one frozen settings object, built at the entry point from flags, environment and project.toml."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
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
    targets: Targets | None = None           # None: the project's own [targets] in project.toml
    take_check: bool | None = None           # False: --no-take-check; None: project.toml [voice] take_check

    def project_path(self, name: str | None = None) -> Path:
        """A project argument is a folder when it holds a project.toml, else a name under projects_dir."""
        from memory.errors import ProjectNameError
        from memory.project import slugify_project_name

        name = name or self.project_name
        if not name or not name.strip():
            raise ProjectNameError("no project given (the name is empty); name one, e.g. `storyreel chat "
                                   "fox-rain` (`storyreel new NAME` creates one)")
        as_path = Path(name).expanduser()
        try:
            if (as_path / "project.toml").exists() or as_path.is_absolute():
                return as_path
        except OSError as exc:   # a name too long for the file system (ENAMETOOLONG), NUL...
            raise ProjectNameError(f"project {name[:60]!r}… is not a usable folder name ({exc.strerror}); "
                                   "use the project's short name, e.g. fox-rain") from exc
        return self.projects_dir / slugify_project_name(name)

    def open_project(self, name: str | None = None) -> Project:
        """The project, checked for what a session needs: its folders are folders, [llm] is a table."""
        from memory.errors import ProjectError
        from memory.project import PROJECT_FOLDERS, open_project

        project = open_project(self.project_path(name))
        for folder in PROJECT_FOLDERS:
            path = project.root / folder
            if path.exists() and not path.is_dir():
                raise ProjectError(f"{path} is a file, but a project keeps its {folder}/ folder there; "
                                   "rename or move that file away, then open the project again "
                                   "(nothing was changed)")
        for table in ("llm", "painter", "voice", "motion"):
            if table in project.settings and not isinstance(project.settings[table], dict):
                raise ProjectError(f"{project.settings_path}: {table} = {project.settings[table]!r} must be a "
                                   f"table; write it as a [{table}] section (e.g. [llm] with base_url = "
                                   f"\"http://127.0.0.1:8080/v1\") — nothing was changed")
        return project

    def llm_settings(self, project: Project | None) -> LLMSettings:
        from dataclasses import replace

        from agent.llm import settings_from_env

        section = project.settings.get("llm", {}) if project else None
        if section is not None and not isinstance(section, dict):
            from memory.errors import ProjectError

            raise ProjectError(f"{project.settings_path}: llm = {section!r} must be a table; write it as an "
                               "[llm] section with base_url = \"...\" and model = \"...\" (nothing was changed)")
        llm = settings_from_env(dict(section) if section is not None else None)
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
        take_check=False if getattr(args, "no_take_check", False) else None,
    )
