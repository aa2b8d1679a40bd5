"""Unpacking downloaded archives into the cache, atomically and with their file modes."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from ecomctl.errors import InstallError


def extract_zip(archive: Path, destination: Path) -> None:
    """Extract ``archive`` so that ``destination`` is its single top-level directory.

    ``zipfile`` drops Unix modes, so they are restored from each entry's external attributes
    (the launcher scripts must stay executable). Extraction goes to a temporary sibling that is
    renamed at the end, so an interrupted install never leaves a half-extracted tree behind.
    """
    staging = destination.with_name(destination.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = Path(zf.extract(info, staging))
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    target.chmod(mode)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InstallError(f"cannot extract {archive}: {exc}") from exc
    tops = [p for p in staging.iterdir()]
    if len(tops) != 1 or not tops[0].is_dir():
        raise InstallError(f"{archive} does not hold a single top-level directory")
    shutil.rmtree(destination, ignore_errors=True)
    tops[0].rename(destination)
    staging.rmdir()
