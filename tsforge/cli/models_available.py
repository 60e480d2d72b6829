"""``tsforge models-available``: the registered model names with one line each."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models-available", help="list registered model names")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tsforge.models import available, model_class

    for name in available():
        doc = (model_class(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:<16}{doc}")
    return 0
