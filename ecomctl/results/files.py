"""Result files: reading one into its typed record by kind, writing one atomically."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TypeAlias

from ecomctl.errors import ConfigError
from ecomctl.results.bench import BenchResult
from ecomctl.results.envelope import ALL_KINDS, LOAD_RUN, SCHEMA_OF, SIMULATION
from ecomctl.results.fields import ResultFormatError
from ecomctl.results.load_run import LoadRunResult
from ecomctl.results.simulation import SimulationResult

Result: TypeAlias = SimulationResult | LoadRunResult | BenchResult


def parse_result(data: object, kinds: tuple[str, ...] = ALL_KINDS) -> Result:
    """The typed record of a result document, by its kind; ``ResultFormatError`` (a
    ``ConfigError``) names the field at fault."""
    schemas = sorted({SCHEMA_OF[k] for k in kinds})
    if not isinstance(data, Mapping) or data.get("schema") not in SCHEMA_OF.values():
        raise ResultFormatError(f"not an ecomctl result ({' or '.join(schemas)} expected)")
    kind = data.get("kind")
    if kind not in SCHEMA_OF or SCHEMA_OF[kind] != data["schema"]:
        known = ", ".join(k for k in ALL_KINDS if SCHEMA_OF[k] == data["schema"])
        raise ResultFormatError(f"kind: {kind!r} is not a kind of {data['schema']} "
                                f"(known: {known})")
    if kind not in kinds:
        raise ResultFormatError(f"a {kind} result; this command reads {' or '.join(kinds)} "
                                "results")
    if kind == SIMULATION:
        return SimulationResult.parse(data)
    if kind == LOAD_RUN:
        return LoadRunResult.parse(data)
    return BenchResult.parse(data)


def read_result(path: Path, kinds: tuple[str, ...] = ALL_KINDS) -> Result:
    """The result file at ``path`` as its typed record; ``ConfigError`` naming the file
    (and the field) when it is missing, not JSON, not a result or not of ``kinds``."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such result file") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a JSON result file ({exc})") from exc
    try:
        return parse_result(data, kinds)
    except ResultFormatError as exc:
        raise ResultFormatError(f"{path}: {exc}") from None


def write_result(result: Result, path: Path) -> None:
    """The one writer of result files. Atomic (a unique temporary file beside ``path``,
    then a rename), so a reader never sees half a document."""
    document = result.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("x", encoding="utf-8") as out:
            out.write(json.dumps(document, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
