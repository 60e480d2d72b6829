"""Validation of version and file names (no path traversal from a CLI argument or a file)."""

from __future__ import annotations

import re
from pathlib import Path

from tsforge.errors import ConfigError

#: A version name: letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit.
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Files inside a version directory: one plain name, no directories.
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_version(name: object) -> str:
    """Return ``name`` if it is a safe version name, else raise :class:`ConfigError`.

    Names become directory names under ``versions/``; separators, ``..``, absolute paths,
    control characters and empty names are refused so that no argument, pipeline file or
    tampered metadata can reach outside the registry.
    """
    if not isinstance(name, str) or not VERSION_RE.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"invalid version name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..' or path separators (e.g. v0003)"
        )
    return name


def validate_file_name(name: object) -> str:
    """Return ``name`` if it is a plain file name (no directory part), else raise."""
    if not isinstance(name, str) or not FILE_RE.fullmatch(name) or ".." in name:
        raise ConfigError(f"invalid file name {name!r} in registry metadata: plain names only")
    return name


def child(parent: Path, name: str) -> Path:
    """``parent / name``, checked to stay directly inside ``parent``."""
    path = parent / name
    if path.parent != parent or path.name != name:
        raise ConfigError(f"{name!r} does not name an entry directly inside {parent}")
    return path
