"""`tsforge report`: one self-contained HTML file, checked by parsing and in a real browser."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

FACTORY = Path(__file__).resolve().parents[1] / "examples" / "data" / "factory"
TSFORGE = shutil.which("tsforge")


class Inventory(HTMLParser):
    """Every tag, attribute and heading text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_heading = tag in ("h1", "h2", "h3")
        if self._in_heading:
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3"):
            self._in_heading = False

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings[-1] += data


def run(*args: str) -> subprocess.CompletedProcess:
    cmd = [TSFORGE, *args] if TSFORGE else [sys.executable, "-m", "tsforge.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    res = run("report", str(FACTORY), "--out", str(out), "--columns", "OT,value",
              "--last", "700", "--horizon", "6", "--family", "esn", "--json",
              str(out.with_suffix(".json")))
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout
    return out


def test_report_is_self_contained_with_every_section(report: Path) -> None:
    page = Inventory()
    page.feed(report.read_text(encoding="utf-8"))
    images = [a for t, a in page.tags if t == "img"]
    # two sensors x (decomposition, forecast, drift)
    assert len(images) == 6
    for attrs in images:
        src = attrs["src"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert attrs["alt"]
    # nothing is fetched from outside the file
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe")
        for key in ("src", "href"):
            assert not attrs.get(key, "").startswith(("http:", "https:", "//", "file:"))
    assert sum(1 for t, _ in page.tags if t == "table") >= 2 + 2 * 4
    heads = " | ".join(page.headings)
    for words in ("Summary", "Data validation", "ETTh1/OT",
                  "machine_temperature_system_failure/value", "Stationarity",
                  "Model family: esn (set by configuration)", "Backtest", "Drift alarms",
                  "ONNX export and runtime latency"):
        assert words in heads


def test_report_json_holds_the_figures_shown(report: Path) -> None:
    data = json.loads(report.with_suffix(".json").read_text())
    files = [s["file"] for s in data["sensors"]]
    assert files == ["ETTh1", "machine_temperature_system_failure"]
    for s in data["sensors"]:
        assert {r["model"] for r in s["backtest"]} == {"naive", "seasonal_naive", "esn"}
        assert s["export"]["parity_max_abs_error"] <= s["export"]["tolerance"]
        assert s["runtime"]["p50_us"] > 0
        assert s["runtime"]["steps"] == s["backtest"][0]["n_test"] - 1
        assert s["stationarity"]["decision"] in ("stationary", "trend-stationary",
                                                 "difference-stationary", "non-stationary")


CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(b)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless chromium on this machine; the "
                    "report is still checked by parsing")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    mpimg = pytest.importorskip("matplotlib.image")
    shot = tmp_path / "shot.png"
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--hide-scrollbars", "--window-size=1200,3000",
                          f"--screenshot={shot}", report.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.exists(), res.stderr
    pixels = mpimg.imread(shot)[..., :3]
    # a rendered page: mostly white, with text, tables and figures drawn on it
    assert pixels.shape[:2] == (3000, 1200)
    dark = (pixels.mean(axis=2) < 0.5).mean()
    assert 0.005 < dark < 0.5
    assert np.unique(pixels.reshape(-1, 3), axis=0).shape[0] > 200  # figures' colours
