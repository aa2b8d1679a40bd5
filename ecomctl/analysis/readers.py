"""Reading spans from what other systems write: OTLP JSON, the OpenTelemetry SDK's console
output, Jaeger's query APIs (live, or a saved response), and in-process SDK spans.

Formats are told apart per JSON document, so one file may even mix them:

- OTLP JSON (``{"resourceSpans": [...]}``) as the OTLP/JSON spec and the OpenTelemetry
  Collector's file exporter write it: one document per line, one (pretty-printed) document,
  or a JSON array of documents. Ids are hex per the spec; base64 ids (protobuf's
  ``json_format``) are recognised by their length. Enums may be numbers or names, and
  snake_case field names (``resource_spans``) are accepted too.
- The SDK's ``ConsoleSpanExporter``: ``span.to_json()`` objects, concatenated.
- A Jaeger API v3 response (``{"result": {"resourceSpans": [...]}}``: OTLP JSON, wrapped).
- A legacy Jaeger query API response (``{"data": [{"traceID": ..., "spans": [...]}]}``).

A live Jaeger (``jaeger://HOST:PORT``) is read through API v3 (``/api/v3/traces``: OTLP as
stored, with resource attributes and nanosecond times), or through the legacy API
(``/api/traces``) where v3 is missing (Jaeger before 1.35).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from sys import intern
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

from ecomctl.analysis.model import SPAN_KINDS, SpanRecord, group_traces, paused_gc
from ecomctl.durations import parse_duration
from ecomctl.errors import BackendUnavailable, ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "JAEGER_APIS",
    "JAEGER_DEFAULT_LIMIT",
    "JAEGER_SCHEME",
    "from_sdk_spans",
    "group_traces",  # re-exported: reading and grouping usually go together
    "load_spans",
    "parse_text",
    "read_file",
    "read_jaeger",
    "read_jaeger_trace",
    "select_traces",
]

JAEGER_SCHEME = "jaeger://"
JAEGER_DEFAULT_LIMIT = 100
JAEGER_APIS = ("auto", "v3", "legacy")
"""``auto``: API v3, or the legacy API where a Jaeger has no v3."""
UNKNOWN_SERVICE = "unknown_service"

# OTLP enum numbers; names are accepted with or without their prefix.
_OTLP_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_OTLP_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_KIND_NAMES = {name: name for name in SPAN_KINDS} | {"UNSPECIFIED": "INTERNAL"}
_STATUS_NAMES = {"UNSET": "UNSET", "OK": "OK", "ERROR": "ERROR"}

_WHITESPACE = re.compile(r"\s*")
_EMPTY: dict[str, Any] = {}
_NO_STATUS: dict[str, Any] = {}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class _Where:
    """Where in the input a document came from, for error messages (computed on error)."""

    __slots__ = ("offset", "source", "text")

    def __init__(self, source: str, text: str = "", offset: int = 0) -> None:
        self.source, self.text, self.offset = source, text, offset

    def __str__(self) -> str:
        if not self.text:
            return self.source
        line = self.text.count("\n", 0, self.offset) + 1
        return f"{self.source}: line {line} (offset {self.offset})"


# -- ids, enums, values -----------------------------------------------------------------------


class _Ids:
    """Hex or base64 ids to lower-case hex; trace ids (repeated on every span) are cached."""

    __slots__ = ("_traces",)

    def __init__(self) -> None:
        self._traces: dict[str, str] = {}

    def trace(self, value: str) -> str:
        hex_id = self._traces.get(value)
        if hex_id is None:
            hex_id = self._traces[value] = _to_hex(value, 16)
        return hex_id

    def span(self, value: str) -> str:
        return _to_hex(value, 8)

    def parent(self, value: str | None) -> str | None:
        """A parent span id; empty and all-zero ids mean "no parent"."""
        if not value:
            return None
        hex_id = _to_hex(value, 8)
        return hex_id if hex_id != "0000000000000000" else None


def _to_hex(value: str, size: int) -> str:
    """``size`` bytes as hex (2*size characters) or base64 (4*ceil(size/3) characters)."""
    length = len(value)
    if length == 2 * size:
        try:
            raw = bytes.fromhex(value)  # C speed; validates the digits
        except ValueError:
            raw = b""
        if len(raw) == size:  # (fromhex skips spaces: a shorter result is not an id)
            return raw.hex()
    elif length == 4 * -(-size // 3):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size:
            return raw.hex()
    kind = "trace" if size == 16 else "span"
    raise ValueError(f"{kind} id {value!r} is neither {2 * size} hex digits nor base64")


# Enum values seen in the wild: OTLP numbers, OTLP names, bare names, the SDK's str(SpanKind).
_KINDS: dict[Any, str] = {
    **_OTLP_KINDS,
    **{name: name for name in SPAN_KINDS},
    **{f"SPAN_KIND_{name}": name for name in SPAN_KINDS},
    **{f"SpanKind.{name}": name for name in SPAN_KINDS},
    "SPAN_KIND_UNSPECIFIED": "INTERNAL",
}
_STATUSES: dict[Any, str] = {
    **_OTLP_STATUS,
    **{name: name for name in _STATUS_NAMES},
    **{f"STATUS_CODE_{name}": name for name in _STATUS_NAMES},
}


def _kind(value: Any) -> str:
    kind = _KINDS.get(value)
    if kind is not None:
        return kind
    if not isinstance(value, int):
        name = str(value).upper().rpartition(".")[2]  # "SpanKind.SERVER" (console exporter)
        kind = _KIND_NAMES.get(name.removeprefix("SPAN_KIND_"))
    if kind is None:
        raise ValueError(f"unknown span kind {value!r}")
    return kind


def _status(value: Any) -> str:
    status = _STATUSES.get(value)
    if status is not None:
        return status
    if not isinstance(value, int):
        status = _STATUS_NAMES.get(str(value).upper().removeprefix("STATUS_CODE_"))
    if status is None:
        raise ValueError(f"unknown status code {value!r}")
    return status


def _any_value(value: dict[str, Any]) -> Any:
    """An OTLP ``AnyValue`` as a Python value (arrays as lists, kvlists as dicts)."""
    for key, item in value.items():
        if key == "stringValue":
            return item
        if key == "intValue":
            return int(item)
        if key == "doubleValue":
            return float(item)
        if key == "boolValue":
            return bool(item)
        if key == "arrayValue":
            return [_any_value(v) for v in item.get("values", ())]
        if key == "kvlistValue":
            return {kv["key"]: _any_value(kv.get("value", {})) for kv in item.get("values", ())}
        if key == "bytesValue":
            return item
    return None


def _attributes(items: Iterable[dict[str, Any]] | None) -> dict[str, Any]:
    if not items:
        return {}
    # Strings are most attribute values: look them up first, decode the rest.
    return {
        a["key"]: v["stringValue"] if "stringValue" in (v := a.get("value") or _EMPTY)
        else _any_value(v)
        for a in items
    }


def _iso_ns(value: str) -> int:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ((moment - _EPOCH) // _MICROSECOND) * 1000


_SNAKE = re.compile(r"_([a-z])")


def _camelize(obj: Any) -> Any:
    """protobuf JSON with preserved field names (``resource_spans``) to the spec's camelCase."""
    if isinstance(obj, dict):
        return {_SNAKE.sub(lambda m: m.group(1).upper(), k): _camelize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_camelize(v) for v in obj]
    return obj


# -- the three document shapes ----------------------------------------------------------------


def _otlp_spans(doc: dict[str, Any], ids: _Ids, out: list[SpanRecord]) -> None:
    if "resource_spans" in doc:
        doc = _camelize(doc)
    for resource_spans in doc.get("resourceSpans") or ():
        resource = _attributes((resource_spans.get("resource") or {}).get("attributes"))
        service = intern(str(resource.get(SERVICE_NAME) or UNKNOWN_SERVICE))
        scopes = resource_spans.get("scopeSpans") or resource_spans.get(
            "instrumentationLibrarySpans"  # before OTLP 0.15
        ) or ()
        for scope_spans in scopes:
            for span in scope_spans.get("spans") or ():
                status = span.get("status") or _NO_STATUS
                links = span.get("links")
                kind = _KINDS.get(span.get("kind", 0)) or _kind(span.get("kind"))
                code = _STATUSES.get(status.get("code", 0)) or _status(status.get("code"))
                out.append(
                    SpanRecord(
                        trace_id=ids.trace(span["traceId"]),
                        span_id=ids.span(span["spanId"]),
                        parent_span_id=ids.parent(span.get("parentSpanId")),
                        name=intern(span.get("name", "")),
                        service=service,
                        kind=kind,
                        start_ns=int(span["startTimeUnixNano"]),
                        end_ns=int(span["endTimeUnixNano"]),
                        status=code,
                        status_message=status.get("message") or "",
                        attributes=_attributes(span.get("attributes")),
                        links=[(ids.trace(link["traceId"]), ids.span(link["spanId"]))
                               for link in links] if links else [],
                    )
                )


def _console_span(doc: dict[str, Any], ids: _Ids, out: list[SpanRecord]) -> None:
    context = doc["context"]
    parent = doc.get("parent_id")
    status = doc.get("status") or {}
    resource = (doc.get("resource") or {}).get("attributes") or {}
    out.append(
        SpanRecord(
            trace_id=ids.trace(context["trace_id"].removeprefix("0x")),
            span_id=ids.span(context["span_id"].removeprefix("0x")),
            parent_span_id=ids.parent(parent.removeprefix("0x") if parent else None),
            name=intern(doc.get("name", "")),
            service=intern(str(resource.get(SERVICE_NAME) or UNKNOWN_SERVICE)),
            kind=_kind(doc.get("kind", "INTERNAL")),
            start_ns=_iso_ns(doc["start_time"]),
            end_ns=_iso_ns(doc["end_time"]),
            status=_status(status.get("status_code", "UNSET")),
            status_message=status.get("description") or "",
            attributes=dict(doc.get("attributes") or {}),
            links=[
                (ids.trace(link["context"]["trace_id"].removeprefix("0x")),
                 ids.span(link["context"]["span_id"].removeprefix("0x")))
                for link in doc.get("links") or ()
            ],
        )
    )


# Tags the OTLP -> Jaeger translation adds that are not span attributes.
_JAEGER_META_TAGS = frozenset(
    {"span.kind", "otel.status_code", "otel.status_description", "error", "otel.scope.name",
     "otel.scope.version", "otel.library.name", "otel.library.version", "internal.span.format",
     "w3c.tracestate"}
)


def _jaeger_spans(doc: dict[str, Any], ids: _Ids, out: list[SpanRecord]) -> None:
    for trace in doc.get("data") or ():
        processes = trace.get("processes") or {}
        for span in trace.get("spans") or ():
            trace_id = ids.trace(span["traceID"].rjust(32, "0"))
            parent: str | None = None
            links: list[tuple[str, str]] = []
            for ref in span.get("references") or ():
                ref_trace = ids.trace(ref["traceID"].rjust(32, "0"))
                ref_span = ids.span(ref["spanID"].rjust(16, "0"))
                if parent is None and ref.get("refType") == "CHILD_OF" and ref_trace == trace_id:
                    parent = ref_span
                else:
                    links.append((ref_trace, ref_span))
            tags = {t["key"]: t.get("value") for t in span.get("tags") or ()}
            process = span.get("process") or processes.get(span.get("processID"), {})
            status = tags.get("otel.status_code")
            if status is None:
                status = "ERROR" if tags.get("error") in (True, "true") else "UNSET"
            start_ns = int(span["startTime"]) * 1000
            out.append(
                SpanRecord(
                    trace_id=trace_id,
                    span_id=ids.span(span["spanID"].rjust(16, "0")),
                    parent_span_id=parent,
                    name=intern(span.get("operationName", "")),
                    service=intern(str(process.get("serviceName") or UNKNOWN_SERVICE)),
                    kind=_kind(tags.get("span.kind") or "INTERNAL"),
                    start_ns=start_ns,
                    end_ns=start_ns + int(span.get("duration", 0)) * 1000,
                    status=_status(status),
                    status_message=str(tags.get("otel.status_description") or ""),
                    attributes={k: v for k, v in tags.items() if k not in _JAEGER_META_TAGS},
                    links=links,
                )
            )


def _jaeger_v3_spans(doc: dict[str, Any], ids: _Ids, out: list[SpanRecord]) -> None:
    """Jaeger API v3: OTLP JSON under ``result`` (one such document per chunk)."""
    _otlp_spans(doc["result"], ids, out)


_Parser = Callable[[dict[str, Any], _Ids, list[SpanRecord]], None]


def _parser_for(doc: Any) -> _Parser | None:
    if not isinstance(doc, dict):
        return None
    if "resourceSpans" in doc or "resource_spans" in doc:
        return _otlp_spans
    if "context" in doc and "name" in doc:
        return _console_span
    if isinstance(doc.get("data"), list):
        return _jaeger_spans
    result = doc.get("result")
    if isinstance(result, dict) and ("resourceSpans" in result or "resource_spans" in result
                                     or not result):
        return _jaeger_v3_spans
    return None


def _parse_document(doc: Any, ids: _Ids, out: list[SpanRecord], where: _Where) -> None:
    if isinstance(doc, list):
        for item in doc:
            _parse_document(item, ids, out, where)
        return
    parser = _parser_for(doc)
    if parser is None:
        found = f"keys {sorted(doc)[:5]}" if isinstance(doc, dict) else type(doc).__name__
        raise ConfigError(
            f"{where}: not a span document (found {found}); expected OTLP JSON "
            "(resourceSpans), ConsoleSpanExporter output (context, name) or a Jaeger API "
            "response (result or data)"
        )
    try:
        parser(doc, ids, out)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ConfigError(f"{where}: malformed {_FORMAT_NAMES[parser]}: {detail}") from exc


_FORMAT_NAMES: dict[_Parser, str] = {
    _otlp_spans: "OTLP JSON",
    _console_span: "ConsoleSpanExporter span",
    _jaeger_spans: "Jaeger API response",
    _jaeger_v3_spans: "Jaeger API v3 response",
}


# -- public readers ---------------------------------------------------------------------------


def parse_text(text: str, source: str = "<text>") -> list[SpanRecord]:
    """Spans from JSON text: concatenated or newline-separated documents, or an array."""
    decoder = json.JSONDecoder()
    ids = _Ids()
    out: list[SpanRecord] = []
    match_ws = _WHITESPACE.match
    offset = match_ws(text, 0).end()  # type: ignore[union-attr]
    end = len(text)
    with paused_gc():
        _parse_all(text, source, decoder, ids, out, offset, end)
    return out


def _parse_all(
    text: str, source: str, decoder: json.JSONDecoder, ids: _Ids, out: list[SpanRecord],
    offset: int, end: int,
) -> None:
    match_ws = _WHITESPACE.match
    while offset < end:
        try:
            doc, next_offset = decoder.raw_decode(text, offset)
        except json.JSONDecodeError as exc:
            where = _Where(source, text, exc.pos)
            raise ConfigError(f"{where}: not valid JSON: {exc.msg}") from exc
        _parse_document(doc, ids, out, _Where(source, text, offset))
        offset = match_ws(text, next_offset).end()  # type: ignore[union-attr]


def read_file(path: Path) -> list[SpanRecord]:
    """Spans from one file in any of the formats above (sniffed per document)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (offset {exc.start}): not a trace file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_text(text, str(path))


def trace_files(directory: Path) -> list[Path]:
    """The ``*.jsonl`` and ``*.json`` files directly inside ``directory``, oldest first."""
    files = [p for p in directory.iterdir() if p.suffix in (".jsonl", ".json") and p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def jaeger_base_url(url: str) -> str:
    """``jaeger://HOST:PORT`` (or an http(s) URL) to the query API's base URL."""
    if url.startswith(JAEGER_SCHEME):
        url = "http://" + url.removeprefix(JAEGER_SCHEME)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ConfigError(f"{url!r}: expected jaeger://HOST:PORT (the Jaeger query API)")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def parse_lookback(value: str) -> int:
    """``30m``, ``1h30m``, ``2d``... in microseconds."""
    try:
        return round(parse_duration(value, bare_unit=None) * 1_000_000)
    except ValueError as exc:
        raise ConfigError(f"lookback {value!r}: expected a duration like 30m, 1h30m or 2d "
                          f"({exc})") from None


_NO_V3 = object()
"""What ``_jaeger_get`` returns when the Jaeger has no API v3 at all (a 404 of the router,
not Jaeger's own JSON "no traces found")."""


def _jaeger_get(url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    import httpx

    base = jaeger_base_url(url)
    try:
        response = httpx.get(f"{base}{path}", params=params, timeout=10)
    except httpx.HTTPError as exc:
        raise BackendUnavailable("jaeger", f"{base}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    v3 = path.startswith("/api/v3/")
    if response.status_code == 404:
        if v3 and not (isinstance(body, dict) and "error" in body):
            return _NO_V3
        return {"result": {}} if v3 else {"data": []}
    if response.status_code >= 500:
        raise BackendUnavailable("jaeger", f"{base}{path}: HTTP {response.status_code}"
                                 + (f": {_jaeger_errors(body)}" if body is not None else ""))
    if body is None:
        raise BackendUnavailable("jaeger", f"{base}{path}: answered non-JSON")
    if response.status_code >= 400:
        raise ConfigError(f"jaeger query {path}: HTTP {response.status_code}: "
                          f"{_jaeger_errors(body)}")
    return body


def _jaeger_errors(body: Any) -> Any:
    """The legacy API's ``errors`` list or API v3's ``error`` object, else the body."""
    if isinstance(body, dict):
        return body.get("errors") or body.get("error") or body
    return body


def _rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as API v3's RFC 3339 time (UTC, nanosecond fraction)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def _check_api(api: str) -> None:
    if api not in JAEGER_APIS:
        raise ConfigError(f"Jaeger API {api!r}: expected one of {', '.join(JAEGER_APIS)}")


def _no_v3(url: str) -> ConfigError:
    return ConfigError(f"{url}: this Jaeger has no API v3 (/api/v3, Jaeger 1.35 and later)")


def _parse_body(body: Any, source: str) -> list[SpanRecord]:
    out: list[SpanRecord] = []
    _parse_document(body, _Ids(), out, _Where(source))
    return out


def read_jaeger(
    url: str, service: str, limit: int = JAEGER_DEFAULT_LIMIT, lookback: str = "1h",
    *, api: str = "auto",
) -> list[SpanRecord]:
    """The most recent ``limit`` traces in which ``service`` took part, within ``lookback``
    (``30m``, ``1h``, ``2d``...), from Jaeger's API v3 (``/api/v3/traces``) or its legacy
    API (``/api/traces``); ``api`` picks one (``JAEGER_APIS``)."""
    import time

    _check_api(api)
    if not service:
        raise ConfigError(f"{url}: Jaeger's query API needs a service (--service NAME)")
    limit = limit if limit > 0 else JAEGER_DEFAULT_LIMIT
    end_ns = time.time_ns()
    start_ns = end_ns - parse_lookback(lookback) * 1000
    if api != "legacy":
        # query.num_traces until Jaeger 2.13; query.search_depth after (num_traces an alias).
        body = _jaeger_get(url, "/api/v3/traces", {
            "query.service_name": service,
            "query.start_time_min": _rfc3339(start_ns),
            "query.start_time_max": _rfc3339(end_ns),
            "query.num_traces": limit,
            "query.search_depth": limit,
        })
        if body is not _NO_V3:
            return _parse_body(body, f"{url}/api/v3/traces")
        if api == "v3":
            raise _no_v3(url)
    params = {
        "service": service,
        "limit": limit,
        "lookback": lookback,
        "start": start_ns // 1000,
        "end": end_ns // 1000,
    }
    return _parse_body(_jaeger_get(url, "/api/traces", params), f"{url}/api/traces")


def read_jaeger_trace(url: str, trace_id: str, *, api: str = "auto") -> list[SpanRecord]:
    """One trace by id (``/api/v3/traces/{id}``, or ``/api/traces/{id}``); empty when Jaeger
    does not have it."""
    _check_api(api)
    if api != "legacy":
        body = _jaeger_get(url, f"/api/v3/traces/{trace_id}")
        if body is not _NO_V3:
            return _parse_body(body, f"{url}/api/v3/traces/{trace_id}")
        if api == "v3":
            raise _no_v3(url)
    path = f"/api/traces/{trace_id}"
    return _parse_body(_jaeger_get(url, path), f"{url}{path}")


def load_spans(
    source: str | Path,
    *,
    service: str | None = None,
    limit: int = 0,
    lookback: str = "1h",
) -> list[SpanRecord]:
    """Spans from ``jaeger://HOST:PORT`` (needs ``service``), a directory (every ``*.jsonl``
    and ``*.json`` inside) or a file (format sniffed).

    ``service`` keeps the traces in which that service has a span, ``limit`` > 0 the ``limit``
    most recent traces (by first span start): the same meaning as Jaeger's parameters.
    """
    text = str(source)
    if text.startswith(JAEGER_SCHEME):
        return read_jaeger(text, service or "", limit, lookback)
    path = Path(text).expanduser()
    if path.is_dir():
        spans = [span for file in trace_files(path) for span in read_file(file)]
    elif path.exists():
        spans = read_file(path)
    else:
        raise ConfigError(f"{path}: no such file or directory")
    return select_traces(spans, service=service, limit=limit)


def select_traces(
    spans: list[SpanRecord], *, service: str | None = None, limit: int = 0
) -> list[SpanRecord]:
    """The spans of the traces that involve ``service``, the ``limit`` most recent of them."""
    if not service and limit <= 0:
        return spans
    starts: dict[str, int] = {}
    wanted: set[str] = set()
    for span in spans:
        start = starts.get(span.trace_id)
        if start is None or span.start_ns < start:
            starts[span.trace_id] = span.start_ns
        if service and span.service == service:
            wanted.add(span.trace_id)
    keep = wanted if service else set(starts)
    if limit > 0 and len(keep) > limit:
        keep = set(sorted(keep, key=starts.__getitem__, reverse=True)[:limit])
    return [span for span in spans if span.trace_id in keep]


def from_sdk_spans(spans: Iterable[ReadableSpan]) -> list[SpanRecord]:
    """In-process SDK spans (e.g. from an ``InMemorySpanExporter``) as records."""
    return list(_from_sdk(spans))


def _from_sdk(spans: Iterable[ReadableSpan]) -> Iterator[SpanRecord]:
    for span in spans:
        context = span.get_span_context()
        if context is None:
            continue
        parent = span.parent
        resource = span.resource.attributes
        yield SpanRecord(
            trace_id=format(context.trace_id, "032x"),
            span_id=format(context.span_id, "016x"),
            parent_span_id=format(parent.span_id, "016x") if parent else None,
            name=span.name,
            service=str(resource.get(SERVICE_NAME) or UNKNOWN_SERVICE),
            kind=span.kind.name,
            start_ns=span.start_time or 0,
            end_ns=span.end_time or span.start_time or 0,
            status=span.status.status_code.name,
            status_message=span.status.description or "",
            attributes={
                k: list(v) if isinstance(v, tuple) else v
                for k, v in (span.attributes or {}).items()
            },
            links=[
                (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x"))
                for link in span.links
            ],
        )
