from __future__ import annotations

import pytest

from ecomctl.config import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Where the tests' clients connect: the same variables (and defaults) as ecomctl."""
    return Settings.from_env()
