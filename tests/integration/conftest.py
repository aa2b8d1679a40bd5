"""Integration tests talk to the real backends (``ecomctl stack up`` or compose.yaml).

There is no skipping here: a backend that is down makes its tests fail, loudly.
"""

from __future__ import annotations

import pytest

from ecomctl.adapters.postgres.migrations import MigrationReport, load_migrations, migrate
from ecomctl.config import Settings
from ecomctl.resources import fixtures_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
async def migrated(settings: Settings) -> MigrationReport:
    return await migrate(settings.database_url, load_migrations(fixtures_dir() / "migrations"))
