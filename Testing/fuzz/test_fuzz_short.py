"""A short, fixed-seed fuzz run over every reader family: no escapes, crashes, hangs or memory blow-ups.

The long run is ``make fuzz`` (10,000 inputs per family); this one keeps CI honest in about a minute.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402  (a script folder, not a package)

INPUTS_PER_FAMILY = 30
SEED = 20261203

pytestmark = pytest.mark.timeout(600)

# Escapes today's engine still has, found by this run (issue 16): kept visible, not hidden.
KNOWN_ESCAPES: dict[str, str] = {}  # family -> why its escapes are expected (none now)


def _family_param(family: str):
    if family in KNOWN_ESCAPES:
        return pytest.param(family, marks=pytest.mark.xfail(reason=KNOWN_ESCAPES[family], strict=False))
    return family


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> dict:
    keep = tmp_path_factory.mktemp("fuzz_findings")
    return harness.fuzz(INPUTS_PER_FAMILY, seed=SEED, workers=2, timeout_s=10.0, keep=keep)


@pytest.mark.parametrize("family", [_family_param(family) for family in harness.FAMILIES])
def test_family_has_no_escapes_crashes_hangs_or_memory_blowups(short_run, family):
    row = short_run[family]
    assert row["tried"] == INPUTS_PER_FAMILY
    failures = {name: row[name] for name in harness.FAILURES if row[name]}
    assert not failures, f"{family}: {failures}; first findings: {row['findings']}"
