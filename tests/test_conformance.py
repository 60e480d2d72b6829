"""One conformance suite over every registered forecaster (see tsforge.checks)."""

from __future__ import annotations

import pytest

from tsforge.checks import CHECKS
from tsforge.models import available

#: (model, check) pairs that do not apply, with the reason.  Keep this short.
_PEER_NOT_EXPORTABLE = ("peer baseline wrapping a third-party package: its state lives in "
                        "river/statsmodels objects, there is no torch streaming core to export")
OPT_OUTS: dict[tuple[str, str], str] = {
    (name, "check_onnx_matches_library_stream"): _PEER_NOT_EXPORTABLE
    for name in ("snarimax", "holt_winters", "ets", "arima")
}
OPT_OUTS[("auto", "check_onnx_matches_library_stream")] = (
    "an aggregate of families, some without a torch streaming core (statsmodels ETS) and "
    "each behind its own transform chain, is not one ONNX step: each servable expert is "
    "exported alone and the engine's batched BOA combines them (tsforge.export.aggregate, "
    "tsforge.engine.aggregate; parity in tests/test_engine_aggregate.py)")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", available())
def test_conformance(name: str, check) -> None:
    reason = OPT_OUTS.get((name, check.__name__))
    if reason:
        pytest.skip(reason)
    check(name)
