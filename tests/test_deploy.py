"""deploy/: what can be checked without Docker, systemd or a cluster.

The Dockerfiles, the systemd unit and the Kubernetes manifests parse, every file
they copy exists, every command they run is a real entry point whose options the
command's own argument parser accepts, and the edge image installs only the edge
requirements.  (The install script itself is exercised in
tests/test_edge_families.py, which builds a fresh venv with it.)
"""

from __future__ import annotations

import configparser
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tsforge.runtime.cli import build_parser as edge_parser

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
INSTRUCTIONS = {"FROM", "ENV", "COPY", "RUN", "USER", "VOLUME", "ENTRYPOINT", "CMD", "EXPOSE",
                "WORKDIR", "HEALTHCHECK", "ARG", "LABEL"}


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("name", ["edge", "serve"])
def test_dockerfiles_parse_and_copy_existing_files(name):
    steps = dockerfile(DEPLOY / name / "Dockerfile")
    assert {word for word, _ in steps} <= INSTRUCTIONS
    assert steps[0][0] == "FROM" and "slim" in steps[0][1]
    for word, rest in steps:
        if word == "COPY":
            *sources, _ = rest.split()
            for src in sources:
                assert (ROOT / src).exists(), f"{name}/Dockerfile copies missing {src}"
    entry = json.loads(dict(steps)["ENTRYPOINT"])
    assert entry[0] in scripts(), f"{entry[0]} is not a console script of the package"
    assert dict(steps)["USER"] != "root"


def test_edge_image_has_only_edge_requirements():
    steps = dockerfile(DEPLOY / "edge" / "Dockerfile")
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert "--no-deps" in runs and "torch" not in runs
    reqs = [line.split(">")[0].split("=")[0].strip() for line in
            (DEPLOY / "edge" / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert sorted(reqs) == ["numpy", "onnxruntime"]
    entry = json.loads(dict(steps)["ENTRYPOINT"]) + json.loads(dict(steps)["CMD"])
    assert entry[:2] == ["tsforge-edge", "run"]
    edge_parser().parse_args(entry[1:])  # every option exists


def test_systemd_unit_runs_a_valid_edge_command():
    text = (DEPLOY / "edge" / "tsforge-edge.service").read_text().replace("\\\n", " ")
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str
    unit.read_string(text)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    for key in ("ExecStartPre", "ExecStart"):
        argv = shlex.split(service[key])
        assert argv[0].endswith("/bin/tsforge-edge")
        args = edge_parser().parse_args(argv[1:])
        assert args.model == "/var/lib/tsforge/bundle"
    run = edge_parser().parse_args(shlex.split(service["ExecStart"])[1:])
    assert run.command == "run" and run.input.startswith("tail:") and run.adapt
    assert service["Restart"] == "on-failure" and unit["Install"]["WantedBy"]


def test_install_script_is_valid_shell_and_refuses_a_non_bundle(tmp_path):
    script = DEPLOY / "edge" / "install.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    proc = subprocess.run(["sh", str(script), str(tmp_path), str(tmp_path / "p")],
                          capture_output=True, text=True)
    assert proc.returncode == 65 and "not a tsforge bundle" in proc.stderr
    assert not (tmp_path / "p").exists()


def k8s() -> dict[str, dict]:
    yaml = pytest.importorskip("yaml")
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "tsforge-serve.yaml").read_text()))
    return {d["kind"]: d for d in docs}


def test_kubernetes_deployment_probes_and_config():
    docs = k8s()
    assert set(docs) == {"ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["tsforge", "serve", "/etc/tsforge/pipeline.toml"]
    assert container["command"][0] in scripts()
    assert {"name": "metrics", "containerPort": 9108} in container["ports"]
    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe",
                                                   "readinessProbe")}
    assert {p["path"] for p in probes.values()} == {"/healthz", "/metrics"}
    assert all(p["port"] == "metrics" for p in probes.values())
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["pipeline"] == "/etc/tsforge"
    assert volumes["pipeline"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == \
        docs["PersistentVolumeClaim"]["metadata"]["name"]
    spec = tomllib.loads(docs["ConfigMap"]["data"]["pipeline.toml"])
    assert spec["use"] == "kafka" and spec["metrics"]["port"] == 9108
    for key in ("registry", "checkpoint"):
        assert spec[key]["path"].startswith(mounts["state"])
    selector = docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["selector"] == selector
    assert docs["Deployment"]["spec"]["template"]["metadata"]["labels"] == selector


def test_kubernetes_pipeline_is_a_valid_spec(tmp_path):
    pipeline = pytest.importorskip("tsforge.pipeline")
    path = tmp_path / "pipeline.toml"
    path.write_text(k8s()["ConfigMap"]["data"]["pipeline.toml"])
    spec = pipeline.load_spec(path)
    assert spec.use == "kafka"


def test_serve_command_accepts_the_container_arguments():
    pytest.importorskip("tsforge.cli.serve")
    from tsforge.cli import build_parser

    args = build_parser().parse_args(["serve", "/etc/tsforge/pipeline.toml"])
    assert args.command == "serve"


def test_edge_entry_point_is_importable_without_running():
    proc = subprocess.run([sys.executable, "-m", "tsforge.runtime.cli", "--help"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "run" in proc.stdout and "verify" in proc.stdout
