"""The real backends as local processes on 127.0.0.1: install, start, probe, stop (no Docker)."""
