"""Versioned SQL migrations, applied in order, each in its own transaction, recorded in
``schema_migrations`` with a checksum so that an edited, already-applied file is caught."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ecomctl.adapters.postgres.database import connect_single
from ecomctl.errors import ConfigError, MigrationError

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x65636F6D  # "ecom": one migrator at a time, across processes

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER     PRIMARY KEY,
    name       TEXT        NOT NULL,
    checksum   TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationReport:
    applied: tuple[Migration, ...]
    already_applied: int


def load_migrations(directory: Path) -> list[Migration]:
    """Read ``NNNN_name.sql`` files; reject anything else so a typo is not silently skipped."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ConfigError(f"{path}: migration files must be named NNNN_snake_case.sql")
        version = int(match.group(1))
        if version in migrations:
            raise ConfigError(f"{path}: version {version} is used twice")
        migrations[version] = Migration(version, match.group(2), path.read_text())
    if not migrations:
        raise ConfigError(f"no migrations found in {directory}")
    return [migrations[v] for v in sorted(migrations)]


async def migrate(database_url: str, migrations: list[Migration]) -> MigrationReport:
    """Apply the pending migrations; idempotent, safe to run from several processes at once."""
    conn = await connect_single(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {row["version"]: row for row in rows}
        for migration in migrations:
            row = applied.get(migration.version)
            if row is not None and row["checksum"] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} was changed after it "
                    "was applied; add a new migration instead of editing an old one"
                )
        pending = [m for m in migrations if m.version not in applied]
        for migration in pending:
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES ($1, $2, $3)",
                        migration.version, migration.name, migration.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
        return MigrationReport(tuple(pending), len(migrations) - len(pending))
    finally:
        await conn.close()
