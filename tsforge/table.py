"""One look for every table the command line prints: a header, a rule, aligned columns.

Text columns are left-aligned, numbers right-aligned; each column is as wide as its
widest cell, so a person can scan a column top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def cell(value: Any, digits: int = 4, fmt: str | None = None) -> str:
    """A value as table text: floats by ``fmt`` (e.g. ``".3f"``) or to ``digits``
    significant digits, None and NaN as ``-``, booleans as yes/no."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return format(value, fmt) if fmt else f"{value:.{digits}g}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *,
                 digits: int = 4, formats: Sequence[str | None] | None = None) -> str:
    """The rows under their headers, columns aligned (numbers to the right); ``formats``
    gives a format per column (None: ``digits`` significant digits)."""
    fmts = list(formats or []) + [None] * (len(headers) - len(formats or []))
    text = [[cell(v, digits, f) for v, f in zip(row, fmts)] for row in rows]
    numeric = [all(isinstance(row[j], (int, float)) and not isinstance(row[j], bool)
                   for row in rows) and bool(rows) for j in range(len(headers))]
    widths = [max([len(h)] + [len(r[j]) for r in text]) for j, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric)).rstrip()

    head = line(list(headers))
    return "\n".join([head, "-" * len(head), *(line(r) for r in text)])
