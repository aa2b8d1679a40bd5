"""Reading one JSON object of a result document into a typed record, and writing it back.

Every record keeps what it does not know: keys it does not read stay in ``extra``, and the
original key order in ``keys``, so ``from_dict(d).to_dict() == d``, key order included, for
any document a producer wrote, including fields added after this reader (other code adds
fields to results while older readers are still about).

Type errors name the field by its path (``totals.requests: expected an integer, got "12"``);
``read_result`` puts the file in front.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ecomctl.errors import ConfigError

T = TypeVar("T")


class ResultFormatError(ConfigError):
    """A result document does not have the shape its schema says; the message names the
    field (``endpoints["GET /x"].count: ...``)."""


def _shown(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _path(where: str, key: str) -> str:
    if not where:
        return key
    return f"{where}.{key}" if key.isidentifier() else f"{where}[{json.dumps(key)}]"


class Fields:
    """The keys of one object, read one by one; what is never read becomes the record's
    ``extra``."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ResultFormatError(f"{where or 'the document'}: expected an object, "
                                    f"got {_shown(data)}")
        self.data: Mapping[str, Any] = data
        self.where = where
        self._read: set[str] = set()

    def path(self, key: str) -> str:
        return _path(self.where, key)

    def _get(self, key: str, required: bool) -> Any:
        self._read.add(key)
        if key not in self.data and required:
            raise ResultFormatError(f"{self.path(key)}: missing")
        return self.data.get(key)

    def _fail(self, key: str, what: str, value: object) -> ResultFormatError:
        return ResultFormatError(f"{self.path(key)}: expected {what}, got {_shown(value)}")

    # -- scalars --------------------------------------------------------------------------

    def text(self, key: str) -> str:
        value = self._get(key, True)
        if not isinstance(value, str):
            raise self._fail(key, "a string", value)
        return value

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string or null", value)
        return value

    def integer(self, key: str) -> int:
        value = self._get(key, True)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "an integer", value)
        return value

    def opt_integer(self, key: str) -> int | None:
        value = self._get(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._fail(key, "an integer or null", value)
        return value

    def number(self, key: str) -> float:
        value = self.opt_number(key, required=True)
        if value is None:
            raise self._fail(key, "a number", value)
        return value

    def opt_number(self, key: str, *, required: bool = False) -> float | None:
        """A JSON number as written (an int stays an int, so it writes back the same)."""
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise self._fail(key, "a number", value)
        return value

    def boolean(self, key: str) -> bool:
        value = self._get(key, True)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def opt_boolean(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, bool):
            raise self._fail(key, "true, false or null", value)
        return value

    # -- containers -----------------------------------------------------------------------

    def raw_object(self, key: str, *, required: bool = False) -> dict[str, Any] | None:
        """A sub-document kept as plain JSON (its producer owns its shape)."""
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._fail(key, "an object", value)
        return value

    def raw_list(self, key: str) -> list[Any] | None:
        value = self._get(key, False)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._fail(key, "a list", value)
        return value

    def record(self, key: str, parse: Callable[[object, str], T]) -> T:
        return parse(self._get(key, True), self.path(key))

    def opt_record(self, key: str, parse: Callable[[object, str], T]) -> T | None:
        value = self._get(key, False)
        return None if value is None else parse(value, self.path(key))

    def records(self, key: str, parse: Callable[[object, str], T]) -> list[T]:
        value = self._get(key, True)
        if not isinstance(value, list):
            raise self._fail(key, "a list", value)
        return [parse(item, f"{self.path(key)}[{i}]") for i, item in enumerate(value)]

    def opt_records(self, key: str, parse: Callable[[object, str], T]) -> list[T] | None:
        return None if self._get(key, False) is None else self.records(key, parse)

    def record_map(self, key: str, parse: Callable[[object, str], T]) -> dict[str, T]:
        value = self._get(key, True)
        if not isinstance(value, dict):
            raise self._fail(key, "an object", value)
        where = self.path(key)
        return {name: parse(item, _path(where, name)) for name, item in value.items()}

    def opt_record_map(self, key: str,
                       parse: Callable[[object, str], T]) -> dict[str, T] | None:
        return None if self._get(key, False) is None else self.record_map(key, parse)

    def counts(self, key: str) -> dict[str, int] | None:
        """``{name: count}`` (errors by cause, checkouts by outcome)."""
        value = self._get(key, False)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._fail(key, "an object of counts", value)
        for name, count in value.items():
            if isinstance(count, bool) or not isinstance(count, int | float):
                raise ResultFormatError(f"{_path(self.path(key), name)}: expected a count, "
                                        f"got {_shown(count)}")
        return value

    def rest(self) -> dict[str, Any]:
        """The record's ``extra`` and ``keys``: what was not read, and the key order."""
        return {"extra": {k: v for k, v in self.data.items() if k not in self._read},
                "keys": tuple(self.data)}


@dataclass(kw_only=True)
class Record:
    """Base of every typed part of a result: unknown keys and the original key order are
    kept for the round trip."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this reader does not know (newer producers' fields), written back unchanged."""
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False)
    """The keys of the object this record was read from, in order ((): built in code)."""

    def _emit(self, known: dict[str, Any], *, optional: Iterable[str] = ()) -> dict[str, Any]:
        """``known`` plus ``extra``, in the original key order (new keys after it); an
        ``optional`` field that is None is written only if the source had the key."""
        out = dict(known)
        for key in optional:
            if out.get(key) is None and key not in self.keys:
                out.pop(key, None)
        out.update(self.extra)
        ordered = {key: out.pop(key) for key in self.keys if key in out}
        ordered.update(out)
        return ordered


def dump_map(records: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``{name: record}`` as JSON (records have ``to_dict``)."""
    return None if records is None else {k: v.to_dict() for k, v in records.items()}


def dump_list(records: Iterable[Any] | None) -> list[dict[str, Any]] | None:
    return None if records is None else [r.to_dict() for r in records]
