"""Schema-driven fuzzing of the live gateway: schemathesis generates requests from
/openapi.json (with a valid session, so protected routes are exercised too) and fails on any
5xx response."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from pathlib import Path

import httpx
import pytest


async def test_fuzzing_the_openapi_document_finds_no_server_error(
    gateway_url: str, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        email = f"fuzz-{uuid.uuid4().hex[:10]}@example.test"
        await client.post("/api/users/register",
                          json={"email": email, "password": "fuzzing-123", "full_name": "F"})
        login = await client.post("/api/users/login",
                                  json={"email": email, "password": "fuzzing-123"})
        token = login.json()["token"]
        spec = (await client.get("/openapi.json")).json()
    assert len(spec["paths"]) >= 16

    events = tmp_path / "schemathesis.ndjson"
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"{gateway_url}/openapi.json",
        "--checks", "not_a_server_error",
        "--max-examples", "25", "--seed", "20261125",
        "--header", f"Authorization: Bearer {token}",
        "--report", "ndjson", "--report-ndjson-path", str(events),
        "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-4000:]

    summary = re.search(r"(\d+) generated, (\d+) passed", text)
    assert summary is not None, text[-2000:]
    generated, passed = map(int, summary.groups())
    assert generated == passed >= 500
    statuses = [
        int(m) for line in events.read_text().splitlines()
        for m in re.findall(r'"status_code":\s*(\d{3})', line)
    ]
    assert statuses and not [s for s in statuses if s >= 500]
    record_property("fuzz_cases", generated)
    record_property("fuzz_status_codes", json.dumps(sorted(set(statuses))))
