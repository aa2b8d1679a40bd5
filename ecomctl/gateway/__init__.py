"""The HTTP API: thin handlers (parse, call a service, map errors to status codes)."""
