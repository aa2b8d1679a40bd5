"""Tracing and metrics: per-service tracer providers in one process, span capture."""
