"""Model registry: versions and stages, integrity, path safety, corruption and recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _linear_onnx import fit_ar, write_linear_ar

from tsforge.errors import ArtifactError, ConfigError
from tsforge.registry import Registry, RegistryCorruptError, check_registry, recover_registry
from tsforge.runtime import StreamingRuntime

pytest.importorskip("onnx")  # the test artifacts are written with onnx.helper

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.standard_normal(2000)) * 0.1 + np.sin(np.arange(2000) / 10)
    coef, b, m, s = fit_ar(y, 6)
    d = tmp_path_factory.mktemp("art")
    return {
        "good": write_linear_ar(d / "good.onnx", coef, b, m, s, sensor="s1"),
        "other": write_linear_ar(d / "other.onnx", coef * 0.8, b, m, s, sensor="s1"),
        "third": write_linear_ar(d / "third.onnx", coef * 0.9, b + 0.1, m, s, sensor="s1"),
    }


@pytest.fixture()
def reg(tmp_path, artifacts) -> Registry:
    r = Registry(tmp_path / "reg")
    r.register(onnx=artifacts["good"], metrics={"mae": 1.0}, data_window={"rows": [0, 2000]})
    r.promote("v0001")
    r.register(onnx=artifacts["other"], metrics={"mae": 1.2})
    return r


def test_register_promote_rollback_diff(reg, artifacts):
    v2 = reg.show("v0002")
    assert v2.stage == "candidate" and v2.parent == "v0001" and v2.family == "linear_ar"
    assert v2.transforms[0]["kind"] == "scale" and v2.data_window == {}
    assert set(v2.files) == {"model.onnx", "model.json"}
    reg.promote("v0002")
    assert (reg.champion, reg.previous) == ("v0002", "v0001")
    assert reg.show("v0001").stage == "archived"
    reg.rollback()
    assert reg.champion == "v0001" and reg.show("v0002").stage == "rejected"
    assert reg.previous is None
    assert reg.diff("v0001", "v0002")["mae"]["ratio"] == pytest.approx(1.2)
    assert [e["action"] for e in reg.events()] == [
        "register", "promote", "register", "promote", "rollback"]
    with pytest.raises(ConfigError, match="immutable"):
        reg.register(onnx=artifacts["good"], name="v0001")
    with pytest.raises(ConfigError, match="no earlier champion"):
        reg.rollback()
    reg.register(onnx=artifacts["third"], name="pump-3.retrain_2")
    reg.promote("pump-3.retrain_2")
    reg.rollback(to="v0002")  # explicit target, also verified
    assert reg.champion == "v0002"


def test_weights_are_registered_and_loaded_without_pickle(tmp_path, artifacts):
    from tsforge.models import create

    model = create("naive", horizon=2).fit(np.arange(50.0))
    model.save(tmp_path / "naive.npz")
    reg = Registry(tmp_path / "reg")
    info = reg.register(weights=tmp_path / "naive.npz", metrics={"mae": 3.0})
    assert info.model == "naive" and info.has_weights and not info.has_onnx
    loaded = reg.load_forecaster(info.name)
    np.testing.assert_array_equal(loaded.forecast().mean, model.forecast().mean)
    np.savez(tmp_path / "evil.npz", __meta__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ArtifactError, match="not a tsforge model file"):
        reg.register(weights=tmp_path / "evil.npz")


def test_tampered_and_truncated_files_are_refused_champion_keeps_serving(reg):
    serving = StreamingRuntime(reg.load_artifact())  # the champion, loaded before tampering
    before = serving.push("s1", 0.5).copy()
    cand = reg.show("v0002").path / "model.onnx"
    data = bytearray(cand.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cand.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="tampered"):
        reg.promote("v0002")
    assert reg.champion == "v0001"
    champ = reg.show("v0001").path / "model.onnx"
    champ.write_bytes(champ.read_bytes()[:100])  # truncated under the serving process
    with pytest.raises(ArtifactError, match="truncated"):
        reg.load_artifact()
    assert np.all(np.isfinite(serving.push("s1", 0.6))) and before.shape == (1,)
    report = check_registry(reg.root)
    assert not report.ok and any("v0001" in p for p in report.problems)


def test_metadata_tampering_is_detected(reg):
    meta_path = reg.show("v0002").path / "version.json"
    meta = json.loads(meta_path.read_text())
    meta["metrics"]["mae"] = 0.01  # flattering the candidate
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="fails its checksum"):
        reg.show("v0002")
    with pytest.raises(ArtifactError, match="fails its checksum"):
        reg.promote("v0002")


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/b", "..", ".hidden", "",
                                  "v1\x00", "x" * 65, "v..1", "a\\b", "v 1"])
def test_path_traversal_names_are_rejected(reg, artifacts, name):
    with pytest.raises(ConfigError, match="invalid version name"):
        reg.register(onnx=artifacts["good"], name=name)
    with pytest.raises(ConfigError, match="invalid version name"):
        reg.show(name)
    with pytest.raises(ConfigError, match="invalid version name"):
        reg.promote(name)
    assert not (reg.root.parent / "evil").exists()


def test_file_names_inside_metadata_cannot_escape(reg):
    from tsforge.registry.layout import read_version_meta

    vdir = reg.show("v0002").path
    meta = json.loads((vdir / "version.json").read_text())
    meta["files"]["../../outside"] = {"sha256": "0" * 64, "size": 1}
    (vdir / "version.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="invalid file name"):
        read_version_meta(reg.root, "v0002", None)


def test_corrupt_state_gives_clear_error_and_recover_command_repairs(reg):
    reg.promote("v0002")
    (reg.root / "state.json").write_text('{"format": 1, "champion": "v00')  # torn by hand
    with pytest.raises(RegistryCorruptError, match="tsforge models recover --root"):
        Registry(reg.root).champion
    out = _cli("models", "verify", "--root", str(reg.root))
    assert out.returncode == 1 and "recover" in out.stdout
    out = _cli("models", "recover", "--root", str(reg.root))
    assert out.returncode == 0, out.stderr
    fixed = Registry(reg.root)
    assert fixed.champion == "v0002" and fixed.previous == "v0001"
    fixed.verify()
    assert list(reg.root.glob("state.json.corrupt-*"))
    assert _cli("models", "verify", "--root", str(reg.root)).returncode == 0


def test_recover_falls_back_to_earlier_champion_when_champion_is_damaged(reg):
    reg.promote("v0002")
    (reg.show("v0002").path / "model.onnx").write_bytes(b"garbage")
    report = recover_registry(reg.root)
    assert report.champion == "v0001" and any("quarantined" in a for a in report.actions)
    assert Registry(reg.root).verify().name == "v0001"


def test_cli_end_to_end(tmp_path, artifacts):
    root = str(tmp_path / "cli-reg")
    out = _cli("models", "register", "--root", root, "--onnx", str(artifacts["good"]),
               "--metrics", '{"mae": 1.0}', "--promote")
    assert out.returncode == 0 and "registered v0001" in out.stdout, out.stderr
    assert _cli("models", "register", "--root", root, "--onnx",
                str(artifacts["other"]), "--metrics", '{"mae": 2.0}').returncode == 0
    assert _cli("models", "promote", "v0002", "--root", root).returncode == 0
    listing = json.loads(_cli("models", "list", "--root", root, "--json").stdout)
    assert [(r["name"], r["stage"]) for r in listing] == [("v0001", "archived"),
                                                          ("v0002", "champion")]
    assert "2" in _cli("models", "diff", "v0001", "v0002", "--root", root).stdout
    out = _cli("models", "rollback", "--root", root)
    assert out.returncode == 0 and "v0002 (rejected) -> v0001" in out.stdout
    out = _cli("models", "list", "--root", str(tmp_path / "nowhere"))
    assert out.returncode == 0 and "no model registry" in out.stdout  # nothing to list yet
    assert not (tmp_path / "nowhere").exists()
    out = _cli("models", "show", "../../etc", "--root", root)
    assert out.returncode == 2 and "invalid version name" in out.stderr
    assert "rollback" in _cli("models", "events", "--root", root).stdout


def test_readers_never_see_a_half_written_version(tmp_path, artifacts):
    """A writer process registers and switches versions while this process reads."""
    root = tmp_path / "reg"
    Registry(root).register(onnx=artifacts["good"])
    Registry(root).promote("v0001")
    script = textwrap.dedent(f"""
        from tsforge.registry import Registry
        reg = Registry({str(root)!r})
        paths = [{str(artifacts['other'])!r}, {str(artifacts['third'])!r}]
        for i in range(10_000):
            v = reg.register(onnx=paths[i % 2])
            reg.promote(v.name)
            if i % 3 == 0:
                reg.rollback()
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], env=_env())
    reader = Registry(root)
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            state = reader.state()
            for name in state["versions"]:
                reader.show(name, state=state)
            champ = state["champion"]
            reader.verify_in(state, champ)
            seen.add(champ)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert len(seen) > 3  # the champion really changed while we were reading


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tsforge.cli", *args], capture_output=True,
                          text=True, env=_env(), timeout=120)


def test_apply_monitor_events_is_idempotent_and_refuses_stale_ones(reg):
    from tsforge.monitor import MonitorEvent

    reg.promote("v0002")
    rollback = MonitorEvent(kind="rollback", step=9, reason="champion worse",
                            from_version="v0002", to_version="v0001",
                            metrics={"p_value": 1e-5})
    assert reg.apply(rollback).name == "v0001"
    assert reg.apply(rollback).name == "v0001"  # a second worker: nothing changes
    assert [e["action"] for e in reg.events()].count("rollback") == 1
    assert reg.events()[-1]["evidence"]["metrics"]["p_value"] == 1e-5
    stale = MonitorEvent(kind="promote", step=3, reason="better", from_version="v0002",
                         to_version="v0003")
    with pytest.raises(ConfigError, match="stale promote event"):
        reg.apply(stale)
    assert reg.apply(MonitorEvent("hold", 1, "ok", "v0001", "v0001")) is None
