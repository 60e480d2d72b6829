"""One conformance suite over every registered forecaster (see tsforge.checks)."""

from __future__ import annotations

import pytest

from tsforge.checks import CHECKS
from tsforge.models import available

#: (model, check) pairs that do not apply, with the reason.  Keep this short.
OPT_OUTS: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", available())
def test_conformance(name: str, check) -> None:
    reason = OPT_OUTS.get((name, check.__name__))
    if reason:
        pytest.skip(reason)
    check(name)
