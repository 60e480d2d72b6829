"""Read a folder of factory CSV exports: one file per asset, each validated on its own.

A plant hands over one export per machine or line, each with its own clock and
sampling step, so the files are never joined: every file becomes its own
:class:`SensorFrame` with its own :class:`ValidationReport`.

A folder may also hold ``known_events.json``: what the plant knows happened (a
failure, a maintenance stop), per file, so that a study can set its drift alarms
against it::

    {"line3.csv": [{"start": "2024-03-01 06:00", "end": "2024-03-01 09:30",
                    "label": "bearing replaced"}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tsforge.data.csv import header_columns, read_csv
from tsforge.data.frame import SensorFrame
from tsforge.data.validate import DataPolicy, ValidationReport, prepare
from tsforge.errors import DataError

#: Optional file of a folder listing known events per CSV file.
EVENTS_FILE = "known_events.json"


@dataclass
class PreparedFile:
    """One CSV file after :func:`tsforge.data.prepare`.

    Attributes
    ----------
    path
        The file read.
    frame
        The repaired, regular series (possibly only its last ``last`` readings).
    report
        What validation found and repaired, on the whole file.
    events
        Known events of this file from the folder's ``known_events.json``:
        ``(start, end, label)`` with ``datetime64`` bounds.
    """

    path: Path
    frame: SensorFrame
    report: ValidationReport
    events: list[tuple[np.datetime64, np.datetime64, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """File name without the ``.csv`` suffix, used to label its sensors."""
        return self.path.stem


def csv_files(path: str | Path) -> list[Path]:
    """The CSV files named by ``path``: the file itself, or a folder's ``*.csv`` sorted by name.

    Raises
    ------
    DataError
        ``path`` does not exist, or the folder holds no ``.csv`` file.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder; give a CSV file or a folder of CSVs")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    if not files:
        raise DataError(f"{path}: the folder holds no .csv file")
    return files


def read_folder(path: str | Path, *, columns: list[str] | None = None,
                time_col: str | None = None, time_format: str | None = None,
                policy: DataPolicy | None = None, last: int | None = None,
                separator: str | None = None,
                units: dict[str, str] | None = None) -> list[PreparedFile]:
    """Read and validate every CSV named by ``path`` (see :func:`csv_files`).

    Parameters
    ----------
    path
        A CSV file or a folder of CSV files.
    columns
        Only these sensors; a file without any of them is skipped, and a name found in
        no file is an error (so a typo is not silently ignored).
    time_col, time_format, separator, units
        As for :func:`tsforge.data.read_csv`.
    policy
        Repair policy for :func:`tsforge.data.prepare` (default: sort, average
        duplicates, interpolate, median step).
    last
        Keep only the last ``last`` readings of each file after validation (a quick
        look at a long export); None keeps everything.
    """
    wanted = list(columns or [])
    events = known_events(Path(path) if Path(path).is_dir() else Path(path).parent)
    out: list[PreparedFile] = []
    found: set[str] = set()
    for file in csv_files(path):
        names = header_columns(file, separator)
        # A wide file parses only the wanted columns; a long file names its sensors in rows.
        wide = not ("sensor" in names and "value" in names)
        keep = [c for c in names if c in wanted] if wanted and wide else None
        if keep == []:
            continue
        frame = read_csv(file, time_col=time_col, time_format=time_format, separator=separator,
                         columns=keep, units=units)
        if wanted:
            keep = [c for c in frame.sensors if c in wanted]
            found.update(keep)
            if not keep:
                continue
            frame = frame.select(keep)
        frame, report = prepare(frame, policy)
        if last is not None and len(frame) > last:
            frame = frame.slice(len(frame) - last, len(frame))
        out.append(PreparedFile(path=file, frame=frame, report=report,
                                events=events.get(file.name, [])))
    missing = [c for c in wanted if c not in found]
    if missing:
        raise DataError(f"{path}: column(s) {missing} are in no CSV file; check the names "
                        "(they are case-sensitive)")
    return out


def known_events(folder: Path) -> dict[str, list[tuple[np.datetime64, np.datetime64, str]]]:
    """The folder's ``known_events.json`` (see the module docstring); empty when absent."""
    file = folder / EVENTS_FILE
    if not file.is_file():
        return {}
    try:
        table = json.loads(file.read_text(encoding="utf-8"))
        return {name: [(np.datetime64(e["start"], "ns"), np.datetime64(e["end"], "ns"),
                        str(e.get("label", "known event"))) for e in entries]
                for name, entries in table.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{file}: not a valid events file ({exc}); expected "
                        '{"file.csv": [{"start": "...", "end": "...", "label": "..."}]}') from exc
