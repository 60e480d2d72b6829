"""On-disk layout of a registry directory and the checked reading/writing of its files.

::

    ROOT/
      state.json        the commit point: champion, history, stage of every version,
                        generation counter and a checksum of its own body
      state.prev.json   the state before the last write (used by recovery)
      events.jsonl      audit log: one JSON line per register/promote/rollback/recover
      registry.lock     fcntl lock file of the single writer
      versions/NAME/    one immutable directory per version:
          version.json  metadata + SHA-256 and size of every file beside it
          model.onnx, model.json, weights.npz   (as registered)
      .staging/         private directories of registrations in progress

A version is *committed* once ``state.json`` names it; ``state.json`` records the
SHA-256 of each ``version.json``, which records the SHA-256 of each file, so one chain of
checksums covers everything that is served.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from tsforge.errors import ArtifactError
from tsforge.io_utils import atomic_write_bytes
from tsforge.registry.names import child, validate_file_name, validate_version

FORMAT = 1
STAGES = ("candidate", "champion", "archived", "rejected")
STATE_FILE = "state.json"
PREV_STATE_FILE = "state.prev.json"
EVENTS_FILE = "events.jsonl"
LOCK_FILE = "registry.lock"
VERSIONS_DIR = "versions"
STAGING_DIR = ".staging"
VERSION_FILE = "version.json"


class RegistryCorruptError(ArtifactError):
    """Registry metadata is unreadable or fails its checksum (the message names the fix)."""


def recovery_hint(root: Path) -> str:
    """The sentence every corruption error ends with: the command that repairs it."""
    return (f"run `tsforge models recover --root {root}` to rebuild it from the previous state "
            "and the checksum-verified version directories")


def canonical(body: dict[str, Any]) -> bytes:
    """Bytes a checksum is taken over: sorted keys, no whitespace."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def empty_state() -> dict[str, Any]:
    """State of a registry with no versions."""
    return {"format": FORMAT, "generation": 0, "champion": None, "history": [], "versions": {}}


def encode_state(state: dict[str, Any]) -> bytes:
    """JSON bytes of ``state`` with the checksum of its body added."""
    body = {k: v for k, v in state.items() if k != "checksum"}
    digest = hashlib.sha256(canonical(body)).hexdigest()
    return json.dumps({**body, "checksum": digest}, indent=1, sort_keys=True).encode()


def decode_state(data: bytes, path: Path, root: Path) -> dict[str, Any]:
    """Parse and check a state file; raise :class:`RegistryCorruptError` with the fix."""
    try:
        state = json.loads(data)
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
        body = {k: v for k, v in state.items() if k != "checksum"}
        if hashlib.sha256(canonical(body)).hexdigest() != state.get("checksum"):
            raise ValueError("checksum mismatch (file truncated or edited by hand)")
        if state.get("format") != FORMAT:
            raise ValueError(f"format {state.get('format')!r}, this tsforge reads {FORMAT}")
        for name, entry in state["versions"].items():
            validate_version(name)
            if entry.get("stage") not in STAGES:
                raise ValueError(f"version {name} has unknown stage {entry.get('stage')!r}")
        for name in [state["champion"], *state["history"]]:
            if name is not None and name not in state["versions"]:
                raise ValueError(f"names unregistered version {name!r}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RegistryCorruptError(
            f"registry metadata {path} is corrupt: {exc}; {recovery_hint(root)}"
        ) from exc
    return state


def read_state(root: Path) -> dict[str, Any]:
    """The committed, checked state of the registry at ``root``."""
    path = root / STATE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RegistryCorruptError(
            f"{root} has version data but no {STATE_FILE}; {recovery_hint(root)}"
        ) from None
    return decode_state(data, path, root)


def write_state(root: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Commit ``new`` with the next generation number and return what was written.

    ``old`` is first saved as ``state.prev.json``; then ``state.json`` is replaced by
    atomic rename, which is the single commit point of every registry operation.
    """
    new = {**new, "generation": (0 if old is None else int(old["generation"])) + 1}
    if old is not None:
        atomic_write_bytes(root / PREV_STATE_FILE, encode_state(old))
    atomic_write_bytes(root / STATE_FILE, encode_state(new))
    return new


def version_dir(root: Path, name: str) -> Path:
    """``root/versions/NAME`` for a validated ``name``."""
    return child(root / VERSIONS_DIR, validate_version(name))


def read_version_meta(root: Path, name: str, expected_sha256: str | None) -> dict[str, Any]:
    """Read ``versions/NAME/version.json``, checking it against the digest in the state."""
    path = version_dir(root, name) / VERSION_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(
            f"version '{name}' has no {path}; the directory was removed or damaged. "
            f"Roll back or promote another version; {recovery_hint(root)}"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise ArtifactError(
            f"metadata {path} of version '{name}' fails its checksum (expected "
            f"{expected_sha256[:12]}…, got {digest[:12]}…): it was modified after registration. "
            "Restore the directory from a backup or register the model again"
        )
    try:
        meta = json.loads(data)
        for fname in meta["files"]:
            validate_file_name(fname)
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"metadata {path} of version '{name}' is unreadable: {exc}") from exc
    return meta


def verify_files(root: Path, name: str, meta: dict[str, Any]) -> None:
    """Check size and SHA-256 of every file of a version; raise naming the bad file."""
    vdir = version_dir(root, name)
    for fname, rec in meta["files"].items():
        path = child(vdir, fname)
        try:
            h = hashlib.sha256()
            size = 0
            with open(path, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            raise ArtifactError(f"file {path} of version '{name}' is missing") from None
        if size != rec["size"] or h.hexdigest() != rec["sha256"]:
            raise ArtifactError(
                f"file {path} of version '{name}' is truncated or tampered with (size {size} vs "
                f"{rec['size']}, sha256 {h.hexdigest()[:12]}… vs {rec['sha256'][:12]}…); it is "
                "refused. Keep serving the current champion and restore or re-register it"
            )


def append_event(root: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to the audit log and fsync it (a torn last line is skipped)."""
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(root / EVENTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_events(root: Path) -> list[dict[str, Any]]:
    """Every complete line of the audit log (a torn or garbled line is skipped)."""
    path = root / EVENTS_FILE
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out
