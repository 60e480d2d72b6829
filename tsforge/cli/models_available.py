"""``tsforge models-available``: the registered model names, what each does, and whether it
exports to ONNX and keeps learning online."""

from __future__ import annotations

import argparse
import re


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models-available", help="list registered model names")
    p.set_defaults(func=run)


def plain(doc: str) -> str:
    """The first line of a docstring without reStructuredText markup (``x``, :class:`y`)."""
    line = (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
    line = re.sub(r":\w+:`~?([^`]+)`", r"\1", line)
    return line.replace("``", "")


def run(args: argparse.Namespace) -> int:
    from tsforge.models import available, model_class
    from tsforge.table import format_table

    rows = []
    for name in available():
        cls = model_class(name)
        rows.append([name, bool(getattr(cls, "exportable", False)),
                     bool(getattr(cls, "online", False)), plain(cls.__doc__ or "")])
    print(format_table(["model", "ONNX export", "online", "what it is"], rows))
    print("\nONNX export: `tsforge export --model NAME`; online: keeps learning from every "
          "reading while it serves")
    return 0
