"""Locating the files ecomctl ships beside its code (fixtures: migrations, gates, profiles)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def fixtures_dir() -> Path:
    """``ecomctl/_fixtures`` in a wheel, the checkout's ``fixtures/`` in an editable install."""
    for candidate in (_PACKAGE_DIR / "_fixtures", _PACKAGE_DIR.parent / "fixtures"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("ecomctl's fixtures directory is missing from this installation")
