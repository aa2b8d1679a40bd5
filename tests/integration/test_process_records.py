"""The pid bookkeeping that lets ``stack down`` stop only what ``stack up`` started."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import psutil

from ecomctl.stack import process


def _launch_sleeper(tmp_path: Path) -> process.ProcessRecord:
    return process.launch(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        log_file=tmp_path / "sleeper.log", cwd=tmp_path, env={}, user=None,
    )


def test_record_round_trip_and_stop(tmp_path: Path) -> None:
    record = _launch_sleeper(tmp_path)
    path = tmp_path / "run" / "sleeper.json"
    record.save(path)
    loaded = process.ProcessRecord.load(path)
    assert loaded == record
    assert loaded.process() is not None
    assert process.stop(loaded, timeout=5) is True
    assert not psutil.pid_exists(record.pid) or record.process() is None
    assert process.stop(loaded, timeout=5) is False  # already gone: nothing to do


def test_a_reused_pid_is_not_ours(tmp_path: Path) -> None:
    record = _launch_sleeper(tmp_path)
    try:
        stranger = dataclasses.replace(record, create_time=record.create_time - 3600)
        assert stranger.process() is None
        assert process.stop(stranger, timeout=1) is False
        assert record.process() is not None, "a record with another start time killed it"
    finally:
        process.stop(record, timeout=5)


def test_a_corrupt_record_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert process.ProcessRecord.load(path) is None
    assert process.ProcessRecord.load(tmp_path / "missing.json") is None
