from __future__ import annotations

from pathlib import Path

import pytest

from ecomctl.adapters.postgres.migrations import load_migrations
from ecomctl.errors import ConfigError
from ecomctl.resources import fixtures_dir


def test_shipped_migrations_are_ordered_and_cover_the_domain() -> None:
    migrations = load_migrations(fixtures_dir() / "migrations")
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) == list(range(1, len(versions) + 1))
    sql = "\n".join(m.sql for m in migrations)
    for table in (
        "users", "categories", "products", "inventory", "orders", "order_items",
        "payments", "shipments", "outbox", "processed_events", "inventory_reservations",
    ):
        assert f"CREATE TABLE {table} (" in sql, table


def test_misnamed_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "2_bad name.sql").write_text("SELECT 1;")
    with pytest.raises(ConfigError, match="NNNN_snake_case"):
        load_migrations(tmp_path)


def test_duplicate_version_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 2;")
    with pytest.raises(ConfigError, match="used twice"):
        load_migrations(tmp_path)


def test_empty_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no migrations"):
        load_migrations(tmp_path)


def test_checksum_changes_with_content(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    before = load_migrations(tmp_path)[0].checksum
    (tmp_path / "0001_a.sql").write_text("SELECT 2;")
    assert load_migrations(tmp_path)[0].checksum != before
