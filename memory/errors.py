"""Storyreel's small error vocabulary.

Every exception names the bad value and how to fix it; the UI shows the message as is.
"""
from __future__ import annotations


class StoryreelError(Exception):
    """Base of every error Storyreel shows to the director."""


class ProjectError(StoryreelError):
    """The project folder is missing, corrupt, locked or of an unknown schema."""


class ProjectNameError(ProjectError):
    """A project name that cannot become a folder name (path separators, '..', empty)."""


class ProjectLockedError(ProjectError):
    """Another process has the project open."""


class PathOutsideProjectError(ProjectError):
    """A path that resolves outside the project folder."""


class InputError(StoryreelError):
    """Bad input from the director: too long, wrong type, corrupt file."""


class RecordNotFoundError(StoryreelError):
    """A canon record id or revision that does not exist."""


class BackendError(StoryreelError):
    """A model backend failed (server unreachable, out of memory, bad weights path)."""


class LLMUnavailableError(BackendError):
    """The LLM endpoint cannot be reached or timed out."""


class LLMOutputError(BackendError):
    """The LLM's reply could not be turned into a valid proposal after the repair retries."""
