"""Shared fixtures."""

from __future__ import annotations

import pytest

from privacy.keys import Kek


@pytest.fixture(scope="session")
def kek() -> Kek:
    """A fixed key-file KEK (fast: no scrypt)."""
    return Kek.from_key_bytes(bytes(range(32)))
