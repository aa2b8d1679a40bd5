from __future__ import annotations

import pytest

from tests.otel_recorders import Built, record_exporters


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Built]:
    """Every OTLP exporter the test builds, with its constructor options (nothing is sent)."""
    return record_exporters(monkeypatch)
