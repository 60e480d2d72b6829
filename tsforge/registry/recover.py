"""Check a registry and rebuild its metadata after corruption (``tsforge models verify|recover``).

Normal operation never needs this: every write is atomic and the state file is the
single commit point.  These functions are for what atomic writes cannot prevent: a
disk error, a hand-edited or truncated ``state.json``, a tampered version file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsforge.errors import ArtifactError, ConfigError
from tsforge.io_utils import atomic_write_bytes
from tsforge.registry import layout
from tsforge.registry.lock import WriterLock


@dataclass
class RecoveryReport:
    """Findings of :func:`check_registry` and actions of :func:`recover_registry`."""

    root: str
    ok: bool
    champion: str | None
    problems: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "ok": self.ok, "champion": self.champion,
                "problems": self.problems, "actions": self.actions}


def _valid_versions(root: Path) -> tuple[dict[str, str], list[str]]:
    """``{name: sha256 of version.json}`` of every complete, checksum-valid version dir."""
    valid: dict[str, str] = {}
    problems: list[str] = []
    vdir = root / layout.VERSIONS_DIR
    for path in sorted(vdir.iterdir()) if vdir.exists() else []:
        try:
            meta = layout.read_version_meta(root, path.name, None)
            layout.verify_files(root, path.name, meta)
        except (ArtifactError, ConfigError) as exc:
            problems.append(f"version directory {path.name}: {exc}")
            continue
        valid[path.name] = hashlib.sha256((path / layout.VERSION_FILE).read_bytes()).hexdigest()
    return valid, problems


def check_registry(root: str | Path) -> RecoveryReport:
    """Verify the state file and every version's checksums; change nothing."""
    root = Path(root)
    report = RecoveryReport(root=str(root), ok=True, champion=None)
    try:
        state = layout.read_state(root)
    except ArtifactError as exc:
        report.problems.append(str(exc))
        state = None
    valid, problems = _valid_versions(root)
    report.problems += problems
    if state is not None:
        report.champion = state["champion"]
        for name, entry in state["versions"].items():
            if valid.get(name) != entry["meta_sha256"]:
                report.problems.append(f"committed version {name} ({entry['stage']}) does not "
                                       "verify; recovery quarantines it")
        for name in sorted(set(valid) - set(state["versions"])):
            report.problems.append(f"version directory {name} is not committed (a registration "
                                   "was interrupted); the next write removes it, `recover` "
                                   "adopts it as a candidate")
    staging = root / layout.STAGING_DIR
    if staging.exists() and any(staging.iterdir()):
        report.problems.append("leftovers of an interrupted registration in .staging "
                               "(removed by the next write)")
    report.ok = not report.problems
    return report


def _load_base(root: Path, report: RecoveryReport) -> dict[str, Any]:
    for fname in (layout.STATE_FILE, layout.PREV_STATE_FILE):
        path = root / fname
        if not path.exists():
            continue
        try:
            state = layout.decode_state(path.read_bytes(), path, root)
        except ArtifactError as exc:
            report.problems.append(str(exc))
            aside = path.with_name(f"{fname}.corrupt-{int(time.time())}")
            os.replace(path, aside)
            report.actions.append(f"moved unreadable {fname} to {aside.name}")
            continue
        report.actions.append(f"started from {fname} (generation {state['generation']})")
        return state
    report.actions.append("no readable state: rebuilding from version directories alone")
    return layout.empty_state()


def recover_registry(root: str | Path, *, lock_timeout: float = 30.0) -> RecoveryReport:
    """Rebuild ``state.json`` so that the registry opens and serves a verified champion.

    Steps: start from ``state.json``, else ``state.prev.json``, else nothing (unreadable
    files are kept aside as ``*.corrupt-<time>``); drop versions that fail their checksums
    (their directories move to ``quarantine/``); adopt complete uncommitted versions as
    candidates; replay promote/rollback records of ``events.jsonl`` newer than the base;
    if the champion does not verify, fall back to the newest verified earlier champion.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"registry directory {root} does not exist")
    report = RecoveryReport(root=str(root), ok=False, champion=None)
    with WriterLock(root / layout.LOCK_FILE, lock_timeout):
        base = _load_base(root, report)
        valid, problems = _valid_versions(root)
        report.problems += problems
        state = {**layout.empty_state(), "generation": base["generation"]}
        for name, entry in base["versions"].items():
            if valid.get(name) == entry["meta_sha256"]:
                state["versions"][name] = dict(entry)
            else:
                _quarantine(root, name, report)
        for name in sorted(set(valid) - set(state["versions"])):
            if (root / layout.VERSIONS_DIR / name).exists():
                state["versions"][name] = {"stage": "candidate", "meta_sha256": valid[name],
                                           "registered": "recovered"}
                report.actions.append(f"adopted uncommitted version {name} as candidate")
        known = state["versions"]
        state["champion"] = base["champion"] if base["champion"] in known else None
        state["history"] = [h for h in base["history"] if h in known]
        last_gen = base["generation"]
        for rec in layout.read_events(root):
            gen = int(rec.get("generation", 0))
            if gen <= base["generation"] or rec.get("action") not in ("promote", "rollback"):
                continue
            target = rec.get("version")
            if target in known and target != state["champion"]:
                _switch(state, target, rollback=rec["action"] == "rollback")
                report.actions.append(f"replayed {rec['action']} to {target} (generation {gen})")
            last_gen = max(last_gen, gen)
        while state["champion"] is None and state["history"]:
            state["champion"] = state["history"].pop()
            report.actions.append(f"champion restored to earlier champion {state['champion']}")
        for name, entry in known.items():
            if entry["stage"] == "champion" and name != state["champion"]:
                entry["stage"] = "archived"
        if state["champion"] is not None:
            known[state["champion"]]["stage"] = "champion"
        committed = {**state, "generation": last_gen + 1}
        atomic_write_bytes(root / layout.STATE_FILE, layout.encode_state(committed))
        (root / layout.VERSIONS_DIR).mkdir(exist_ok=True)
        layout.append_event(root, {"generation": committed["generation"], "action": "recover",
                                   "time": time.time(), "champion": committed["champion"],
                                   "actions": report.actions})
    report.champion = committed["champion"]
    report.ok = True
    return report


def _switch(state: dict[str, Any], target: str, rollback: bool) -> None:
    old = state["champion"]
    if old is not None:
        state["versions"][old]["stage"] = "rejected" if rollback else "archived"
        if not rollback:
            state["history"].append(old)
    state["history"] = [h for h in state["history"] if h != target]
    state["versions"][target]["stage"] = "champion"
    state["champion"] = target


def _quarantine(root: Path, name: str, report: RecoveryReport) -> None:
    src = root / layout.VERSIONS_DIR / name
    if src.exists():
        dst = root / "quarantine" / f"{name}.{int(time.time())}"
        dst.parent.mkdir(exist_ok=True)
        shutil.move(str(src), dst)
        report.actions.append(f"quarantined version {name} (fails verification) to {dst}")
    else:
        report.actions.append(f"dropped version {name}: its directory is missing")
