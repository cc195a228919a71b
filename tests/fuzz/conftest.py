"""Writes the campaign's tallies when ``COVAULT_FUZZ_REPORT`` names a file."""

from __future__ import annotations

import os

import pytest

from ._fuzz import write_report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("COVAULT_FUZZ_REPORT")
    if path:
        write_report(path)
