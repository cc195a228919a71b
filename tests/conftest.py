"""Shared fixtures."""

from __future__ import annotations

import pytest

from privacy.keys import Kek


@pytest.fixture(scope="session")
def kek() -> Kek:
    """A fixed key-file KEK (fast: no scrypt)."""
    return Kek.from_key_bytes(bytes(range(32)))


@pytest.fixture
def no_flower(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the test if the federated runner gets as far as starting Flower."""
    import federated.runner as runner

    started: list[str] = []

    def refuse(*args: object, **kwargs: object) -> object:
        started.append("flower")
        raise AssertionError("a Flower federation was started for a bad input")

    monkeypatch.setattr(runner, "_federation", refuse)
    monkeypatch.setattr(runner, "_follow", refuse)
    return started
