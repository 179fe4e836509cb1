"""Timestamps the engine writes (model cards, review records): one format, torch-free."""

from __future__ import annotations

import datetime


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second, e.g. ``2025-01-31T12:00:00Z``."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
