"""The attribute names the installed opentelemetry-semantic-conventions package deprecates,
read from the package itself, never typed by hand: each attribute is a module-level constant
of ``opentelemetry.semconv[._incubating].attributes.*`` followed by its docstring, which
begins ``Deprecated:`` for a deprecated one ("Deprecated: Replaced by `db.query.text`.");
enums of deprecated attributes are marked ``@deprecated("The attribute X is deprecated...")``
(typing_extensions). An incubating constant "Deprecated in favor of stable ..." has only
moved to the stable module: its name is current.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import re
from functools import cache
from itertools import pairwise
from types import ModuleType

import opentelemetry.semconv._incubating.attributes as incubating
import opentelemetry.semconv.attributes as stable

_DEPRECATED_ENUM = re.compile(r"The attribute (\S+) is deprecated - ([^\"]*)")


def _sources(package: ModuleType) -> list[str]:
    sources = []
    for module in pkgutil.iter_modules(package.__path__):
        spec = importlib.util.find_spec(f"{package.__name__}.{module.name}")
        assert spec is not None and spec.origin is not None
        with open(spec.origin, encoding="utf-8") as file:
            sources.append(file.read())
    return sources


def _constant(node: ast.stmt) -> str | None:
    value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None


def _docstring(node: ast.stmt) -> str | None:
    if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)):
        return node.value.value.strip()
    return None


@cache
def deprecated_attributes() -> dict[str, str]:
    """Every deprecated attribute name -> what the package says about it."""
    found: dict[str, str] = {}
    for source in _sources(incubating) + _sources(stable):
        found.update(_DEPRECATED_ENUM.findall(source))
        body = ast.parse(source).body
        for node, after in pairwise(body):
            name, doc = _constant(node), _docstring(after)
            if name is not None and doc is not None and doc.startswith("Deprecated:"):
                found[name] = doc.removeprefix("Deprecated:").strip()
    return found
