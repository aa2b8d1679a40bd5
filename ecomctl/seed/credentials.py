"""The demo shoppers' credentials file, written by ``ecomctl seed`` and read by simulations
and Locust scenarios (which run in their own gevent processes: this module imports nothing
heavy).

Format (version 1)::

    {"version": 1, "seed": 42,
     "shoppers": [{"user_id": 1, "email": "ann.lee1@example.com", "password": "..."}, ...]}

The file holds passwords in clear, so it is written with mode 0600, atomically (a reader never
sees half a file).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecomctl.errors import ConfigError

FORMAT_VERSION = 1
FILE_NAME = "shoppers.json"


@dataclass(frozen=True)
class Shopper:
    user_id: int
    email: str
    password: str


@dataclass(frozen=True)
class Credentials:
    seed: int
    shoppers: tuple[Shopper, ...]


def default_credentials_path() -> Path:
    from ecomctl.config import state_dir

    return state_dir() / FILE_NAME


def write_credentials(path: Path, seed: int, shoppers: Iterable[Shopper]) -> Path:
    """Replace ``path`` with the credentials (mode 0600); returns the path written."""
    document = {
        "version": FORMAT_VERSION,
        "seed": seed,
        "shoppers": [
            {"user_id": s.user_id, "email": s.email, "password": s.password} for s in shoppers
        ],
    }
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600 before any secret is in it.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, separators=(",", ":"))
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_credentials(path: Path | str | None = None) -> Credentials:
    """Read a credentials file (default: the one ``ecomctl seed`` writes); ConfigError if it
    is missing or not in the expected format."""
    path = Path(path) if path is not None else default_credentials_path()
    try:
        document = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no credentials file; run `ecomctl seed` first") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read credentials: {exc}") from exc
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: not a version {FORMAT_VERSION} credentials file")
    seed, raw = document.get("seed"), document.get("shoppers")
    if not isinstance(seed, int) or not isinstance(raw, list):
        raise ConfigError(f"{path}: expected an integer 'seed' and a 'shoppers' list")
    return Credentials(seed=seed, shoppers=tuple(_shopper(path, item) for item in raw))


def _shopper(path: Path, item: Any) -> Shopper:
    if (
        isinstance(item, dict)
        and isinstance(item.get("user_id"), int)
        and isinstance(item.get("email"), str)
        and isinstance(item.get("password"), str)
    ):
        return Shopper(item["user_id"], item["email"], item["password"])
    raise ConfigError(f"{path}: malformed shopper entry {item!r:.80}")


async def missing_shoppers(database_url: str, shoppers: Sequence[Shopper]) -> int:
    """How many of ``shoppers`` the shop's database does not know (same id and email): a
    credentials file from an earlier seed logs nobody in after a reseed."""
    from ecomctl.adapters.postgres.database import Database
    from ecomctl.adapters.postgres.users import count_known_users

    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        known = await count_known_users(db, [(s.user_id, s.email) for s in shoppers])
    finally:
        await db.close()
    return len(shoppers) - known


def check_shoppers_exist(database_url: str, path: Path, shoppers: Sequence[Shopper]) -> None:
    """ConfigError, with the way out, when the credentials file does not match the shop."""
    import asyncio

    missing = asyncio.run(missing_shoppers(database_url, shoppers))
    if missing:
        raise shoppers_mismatch(path, missing, len(shoppers))


def shoppers_mismatch(path: Path, missing: int, total: int) -> ConfigError:
    return ConfigError(
        f"{path}: {missing} of {total} shoppers are not in the shop's database (it was seeded "
        "again since); run `ecomctl seed` or pass the matching --credentials"
    )
