"""Run a pipeline spec.

``use = "csv"`` runs here: the proof-of-concept study of :mod:`tsforge.report` on
``[source] path``, with its results written to ``[output] path``::

    OUTPUT/results.json        every figure of the study (validation, tests, pick,
                               backtest scores, drift alarms, export, latency)
    OUTPUT/report.html         the self-contained report (when [output] report = true)
    OUTPUT/models/*.onnx       the picked model of every sensor, with its manifest
    OUTPUT/figures/*.png       the report's figures as files

Kafka and edge pipelines are long-running services with their own commands; this
module says which one to use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsforge.errors import ConfigError
from tsforge.io_utils import atomic_write_bytes

#: How each kind of pipeline that ``tsforge run`` does not run itself is started.
SERVICE_COMMANDS = {
    "kafka": "tsforge serve {path}",
    "edge": "tsforge-edge run MODEL.onnx on the edge box, with the settings of {path}",
}


@dataclass
class RunResult:
    """Where a csv pipeline wrote its results, and the study itself."""

    study: Any
    output: Path
    results: Path
    report: Path | None
    models: list[Path]


def run_pipeline(spec: Any, *, last: int | None = None,
                 log: Callable[[str], None] | None = None) -> RunResult:
    """Run ``spec`` (a :class:`~tsforge.pipeline.PipelineSpec`); see the module docstring.

    Parameters
    ----------
    spec
        The validated spec.
    last
        Study only the last ``last`` readings of each file (a quick look).
    log
        Called with one line per stage.

    Raises
    ------
    ConfigError
        For ``use = "kafka"`` or ``"edge"``, naming the command that runs them.
    """
    if spec.use != "csv":
        command = SERVICE_COMMANDS[spec.use].format(path=spec.origin or "PIPELINE.toml")
        raise ConfigError(f"pipeline '{spec.name}' has use = '{spec.use}': it is a long-running "
                          f"service, started with: {command}. `tsforge run` runs csv "
                          "pipelines (use = 'csv') itself")
    from tsforge.report import run_study, write_html

    say = log or (lambda _text: None)
    out = Path(spec.output.path)
    if spec.registry.path:
        say(f"note: [registry] path is used by the production service; this csv pipeline "
            f"writes its models to {out / 'models'}")
    study = run_study(spec, last=last, export_dir=out / "models", log=say)
    results = out / "results.json"
    atomic_write_bytes(results, json.dumps(study.to_dict(), indent=1, default=float).encode())
    for s in study:
        for kind, png in s.figures.items():
            atomic_write_bytes(out / "figures" / f"{s.file}__{s.sensor}__{kind}.png", png)
    report = write_html(study, out / "report.html") if spec.output.report else None
    models = sorted((out / "models").glob("*.onnx"))
    say(f"wrote {results}" + (f", {report}" if report else "") + f" and {len(models)} ONNX "
        f"model(s) in {out / 'models'}")
    return RunResult(study=study, output=out, results=results, report=report, models=models)
