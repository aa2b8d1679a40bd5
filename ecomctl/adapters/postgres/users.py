"""User accounts in PostgreSQL. Emails are unique case-insensitively (index on lower(email))."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from ecomctl.adapters.postgres.database import Database
from ecomctl.domain.models import User
from ecomctl.errors import EmailTaken

_COLUMNS = "id, email, full_name, created_at"
_EMAIL_INDEX = "users_email_key"


def _user(row: Any) -> User:
    return User(
        id=row["id"], email=row["email"], full_name=row["full_name"],
        created_at=row["created_at"],
    )


class UserRepository:
    """Single-statement reads and writes; each runs in its own implicit transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, email: str, full_name: str, password_hash: str) -> User:
        try:
            async with self._db.connection() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO users (email, full_name, password_hash) VALUES ($1, $2, $3) "
                    f"RETURNING {_COLUMNS}",
                    email, full_name, password_hash,
                )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == _EMAIL_INDEX:
                raise EmailTaken() from exc
            raise
        return _user(row)

    async def by_email(self, email: str) -> tuple[User, str] | None:
        """The user and their password hash; matched case-insensitively (uses the index)."""
        async with self._db.connection() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)",
                email,
            )
        return None if row is None else (_user(row), row["password_hash"])

    async def by_id(self, user_id: int) -> User | None:
        async with self._db.connection() as conn:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
        return None if row is None else _user(row)

    async def update_password_hash(self, user_id: int, password_hash: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash
            )


async def count_known_users(db: Database, users: Sequence[tuple[int, str]]) -> int:
    """How many of ``users`` ((id, email) pairs) exist with that id and email."""
    async with db.connection() as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM users u JOIN unnest($1::bigint[], $2::text[]) AS s(id, email) "
            "ON u.id = s.id AND lower(u.email) = lower(s.email)",
            [user_id for user_id, _ in users], [email for _, email in users],
        ))
