from __future__ import annotations

from pathlib import Path

from ecomctl.cli.stack import BACKENDS
from ecomctl.stack.backend import StackPaths
from ecomctl.stack.manager import LocalStack


def test_the_help_texts_name_every_backend_in_start_order(tmp_path: Path) -> None:
    stack = LocalStack(StackPaths(state=tmp_path, cache=tmp_path / "cache"), user=None)
    assert BACKENDS.split(", ") == list(stack.backends)
