"""Project folder: names, layout, settings, atomic writes, path containment and the lock."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest

from memory.errors import (
    InputError,
    PathOutsideProjectError,
    ProjectError,
    ProjectLockedError,
    ProjectNameError,
)
from memory.project import (
    SCHEMA_VERSION,
    CorruptProjectError,
    ProjectLock,
    SchemaVersionError,
    atomic_write_bytes,
    atomic_write_text,
    create_project,
    list_projects,
    open_project,
    slugify_project_name,
    update_project_settings,
)

REPO = Path(__file__).resolve().parents[1]


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Fox Rain", "fox-rain"),
        ("  Fox   Rain!  ", "fox-rain"),
        ("狐の雨", "狐の雨"),
        ("Café Noir: Part 2", "café-noir-part-2"),
        ("a" * 80, "a" * 80),
    ],
)
def test_slugify_keeps_letters_and_joins_words(name: str, slug: str) -> None:
    assert slugify_project_name(name) == slug


@pytest.mark.parametrize(
    "bad",
    ["../x", "a/b", "a\\b", "..", "x..y", "a\x00b", ".hidden", "", "   \t", "a" * 81, "!!!"],
)
def test_slugify_rejects_unsafe_names_naming_them_and_the_rule(bad: str) -> None:
    with pytest.raises(ProjectNameError) as info:
        slugify_project_name(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "project name" in message and "try" in message


def test_create_rejects_traversal_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ProjectNameError):
        create_project(tmp_path / "p", "../x")
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "p").exists()


# --- create / open -----------------------------------------------------------------------------


def test_create_project_lays_out_folders_and_settings(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    assert project.root == (tmp_path / "fox-rain").resolve()
    assert project.name == "Fox Rain"
    for folder in ("bible", "state", "assets", "renders"):
        assert (project.root / folder).is_dir()
    text = (project.root / "project.toml").read_text()
    settings = tomllib.loads(text)
    assert settings["schema_version"] == SCHEMA_VERSION
    assert settings["name"] == "Fox Rain"
    assert settings["created"].startswith("20")
    assert settings["llm"] == {}
    assert "# base_url" in text and "# model" in text
    assert project.canon_path == project.root / "canon.sqlite"
    assert project.chroma_dir == project.root / "bible" / "chroma"
    assert project.checkpoints_path == project.root / "state" / "checkpoints.sqlite"
    assert project.ledger_path == project.root / "ledger.jsonl"
    assert project.assets_dir == project.root / "assets"
    assert project.renders_dir == project.root / "renders"
    assert project.lock_path == project.root / ".storyreel.lock"

    reopened = open_project(project.root)
    assert reopened == project
    assert reopened.settings == settings


def test_create_unicode_project(tmp_path: Path) -> None:
    project = create_project(tmp_path, "狐の雨")
    assert project.root.name == "狐の雨"
    assert open_project(project.root).name == "狐の雨"


def test_create_refuses_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "fox-rain").mkdir()
    (tmp_path / "fox-rain" / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError, match="pick another name.*open it"):
        create_project(tmp_path, "Fox Rain")
    assert sorted(p.name for p in (tmp_path / "fox-rain").iterdir()) == ["notes.txt"]


def test_create_accepts_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "fox-rain").mkdir()
    assert create_project(tmp_path, "Fox Rain").name == "Fox Rain"


def test_open_missing_folder_and_missing_toml(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="storyreel new NAME"):
        open_project(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ProjectError, match="is not a Storyreel project: no project.toml") as info:
        open_project(tmp_path / "plain")
    assert "storyreel new NAME" in str(info.value)


def test_open_corrupt_toml_names_line_and_leaves_file_untouched(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    broken = b'schema_version = 1\nname = "Fox Rain"\ncreated = = nope\n'
    project.settings_path.write_bytes(broken)
    before = project.settings_path.stat().st_mtime_ns
    with pytest.raises(CorruptProjectError) as info:
        open_project(project.root)
    message = str(info.value)
    assert "line 3" in message
    assert "project.toml" in message
    assert "nothing was changed" in message
    assert project.settings_path.read_bytes() == broken
    assert project.settings_path.stat().st_mtime_ns == before
    assert isinstance(info.value, ProjectError)


def test_open_unknown_schema_version(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    project.settings_path.write_text('schema_version = 7\nname = "Fox Rain"\n')
    with pytest.raises(SchemaVersionError) as info:
        open_project(project.root)
    message = str(info.value)
    assert "7" in message and f"schema_version {SCHEMA_VERSION}" in message
    assert "upgrade Storyreel" in message


def test_open_without_schema_version_says_what_to_add(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    project.settings_path.write_text('name = "Fox Rain"\n')
    with pytest.raises(CorruptProjectError, match="no schema_version.*schema_version = 1"):
        open_project(project.root)
    project.settings_path.write_text('schema_version = true\nname = "Fox Rain"\n')
    with pytest.raises(SchemaVersionError, match="True"):
        open_project(project.root)


def test_update_settings_merges_and_round_trips(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    updated = update_project_settings(
        project, "llm", {"base_url": 'http://127.0.0.1:8080/v1', "model": 'say "hi"\n', "temperature": 0.7}
    )
    updated = update_project_settings(updated, "llm", {"max_tokens": 512, "json_mode": True})
    updated = update_project_settings(updated, "voices", {"aiko": "joe", "speeds": [1.0, 1.1]})
    on_disk = open_project(project.root).settings
    assert on_disk == updated.settings
    assert on_disk["llm"] == {
        "base_url": "http://127.0.0.1:8080/v1", "model": 'say "hi"\n', "temperature": 0.7,
        "max_tokens": 512, "json_mode": True,
    }
    assert on_disk["voices"]["speeds"] == [1.0, 1.1]
    assert on_disk["name"] == "Fox Rain" and on_disk["schema_version"] == SCHEMA_VERSION
    leftovers = [p.name for p in project.root.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_update_settings_rejects_bad_values_and_keeps_file(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    before = project.settings_path.read_bytes()
    with pytest.raises(InputError, match="object"):
        update_project_settings(project, "llm", {"client": object()})
    with pytest.raises(InputError, match="'name'"):
        update_project_settings(project, "name", {"x": 1})
    with pytest.raises(InputError, match="section"):
        update_project_settings(project, "a b", {"x": 1})
    assert project.settings_path.read_bytes() == before


def test_list_projects_skips_broken(tmp_path: Path) -> None:
    create_project(tmp_path, "Fox Rain")
    create_project(tmp_path, "Blue Moon")
    broken = create_project(tmp_path, "Broken")
    broken.settings_path.write_text("schema_version = [\n")
    (tmp_path / "not-a-project").mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert [p.name for p in list_projects(tmp_path)] == ["Blue Moon", "Fox Rain"]
    assert list_projects(tmp_path / "missing") == []


# --- atomic writes -----------------------------------------------------------------------------


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write_text(target, "first")
    os.chmod(target, 0o600)
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with pytest.raises(ProjectError, match="does not exist"):
        atomic_write_text(tmp_path / "missing" / "a.txt", "x")


# --- paths -------------------------------------------------------------------------------------


def test_resolve_and_relative_stay_inside(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    inside = project.resolve("assets/panels/p1.png")
    assert inside == project.root / "assets" / "panels" / "p1.png"
    assert project.resolve(Path("assets") / ".." / "renders") == project.root / "renders"
    assert project.relative(inside) == "assets/panels/p1.png"
    assert project.relative("renders/ep01/episode.mp4") == "renders/ep01/episode.mp4"
    assert project.resolve(project.root / "assets") == project.root / "assets"


@pytest.mark.parametrize("bad", ["../outside.txt", "assets/../../x", "/etc/passwd", "a\x00b"])
def test_resolve_rejects_escapes(tmp_path: Path, bad: str) -> None:
    project = create_project(tmp_path, "Fox Rain")
    with pytest.raises(PathOutsideProjectError) as info:
        project.resolve(bad)
    assert repr(bad) in str(info.value)


def test_resolve_rejects_symlink_out_of_project(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    secret = tmp_path / "secret"
    secret.mkdir()
    (project.assets_dir / "link").symlink_to(secret)
    with pytest.raises(PathOutsideProjectError, match="outside the project"):
        project.resolve("assets/link/key.txt")
    with pytest.raises(PathOutsideProjectError):
        project.relative(secret / "key.txt")


# --- lock --------------------------------------------------------------------------------------


def test_lock_same_process_second_instance_refused(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    with ProjectLock(project) as first:
        assert first.held
        assert f"pid={os.getpid()}" in project.lock_path.read_text()
        with pytest.raises(ProjectLockedError) as info:
            ProjectLock(project).acquire()
        message = str(info.value)
        assert "Fox Rain" in message and str(os.getpid()) in message
        assert "close the other studio/chat, or wait" in message
    # released: a new instance gets it
    again = ProjectLock(project).acquire()
    again.release()
    assert not again.held


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from memory.project import ProjectLock, open_project
    lock = ProjectLock(open_project(Path(sys.argv[1]))).acquire()
    print("locked", flush=True)
    time.sleep(60)
    """
)


def test_lock_from_second_process_and_released_when_it_dies(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Fox Rain")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(project.root)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ProjectLockedError) as info:
            ProjectLock(project).acquire()
        assert f"pid {holder.pid}" in str(info.value)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    deadline = time.monotonic() + 5
    while True:
        try:
            lock = ProjectLock(project).acquire()
            break
        except ProjectLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert f"pid={os.getpid()}" in project.lock_path.read_text()
    lock.release()
