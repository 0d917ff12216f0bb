"""Checks of the paths a command will read or write, made before any work: a wrong path is one line naming the
argument and the path, not an error after the work (or a file written somewhere else)."""
from __future__ import annotations

import os
from pathlib import Path

from ablations.errors import UsageError


def first_existing(path: Path) -> Path:
    """The path itself if it exists, else its nearest existing parent (what a mkdir -p would write into)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def given(name: str, value) -> str:
    """How the user typed it: `--out x` for an argparse option, `results_dir=x` for a config key."""
    return f"{name} {value}" if name.startswith("-") else f"{name}={value}"


def not_empty(text, name: str, example: str) -> Path:
    if text is None or not str(text).strip():
        raise UsageError(f"{given(name, repr(text or ''))} is empty; give a path, e.g. {given(name, example)}")
    return Path(str(text))


def writable_directory(text, name: str, example: str = "runs") -> Path:
    """A directory the command creates (with its parents) or writes into."""
    path = not_empty(text, name, example)
    existing = first_existing(path)
    if not existing.is_dir():
        where = "is a file" if existing == path.absolute() else f"cannot be made: {existing} is a file"
        raise UsageError(f"{given(name, text)} {where}, not a directory; give a directory, e.g. "
                         f"{given(name, example)}")
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise UsageError(f"{given(name, text)} cannot be written: {existing} is on a read-only file system")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{given(name, text)} cannot be written: {existing} is not writable")
    return path


def writable_file(text, name: str, example: str, exists_ok: bool = True) -> Path:
    """A file the command writes (its directory must exist)."""
    path = not_empty(text, name, example)
    if path.is_dir():
        raise UsageError(f"{given(name, text)} is a directory; give a file, e.g. {given(name, example)}")
    if path.exists() and not exists_ok:
        raise UsageError(f"{given(name, text)} exists and is never overwritten; name a new file")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{given(name, text)} cannot be written: no directory {parent}")
    try:  # the one sure test: open it as the write will (a new file is removed again; an existing one is untouched)
        if path.exists():
            path.open("a").close()
        else:
            path.open("x").close()
            path.unlink()
    except OSError as error:
        raise UsageError(f"{given(name, text)} cannot be written ({error.strerror or error})") from None
    return path


def readable_file(text, name: str, example: str) -> Path:
    path = not_empty(text, name, example)
    if not path.exists():
        raise UsageError(f"{given(name, text)}: no such file")
    if not path.is_file():
        raise UsageError(f"{given(name, text)} is not a file; give a file, e.g. {given(name, example)}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{given(name, text)} cannot be read (permission denied)")
    return path


def existing_directory(text, name: str, example: str) -> Path:
    path = not_empty(text, name, example)
    if not path.is_dir():
        raise UsageError(f"{given(name, text)} is {'a file' if path.exists() else 'not there'}; give a directory, "
                         f"e.g. {given(name, example)}")
    return path
