"""requirements.lock must say what pyproject.toml asks for, and this environment must be it.

The lock is what every machine installs (`pip install --require-hashes -r requirements.lock`);
pyproject.toml keeps the ranges for people who install ecomctl into their own environment.
When the two disagree (a dependency added or a range moved without `.ci/relock`), these tests
fail and say what to run.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
RELOCK = "run .ci/relock and commit requirements.lock"

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)"
    r"\s*(?:;(?P<marker>[^\\]+))?\\?\s*$"
)


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: int


def parse_lock(text: str) -> list[Pin]:
    """The `name==version ; marker` entries of a pip requirements file, with their hash count."""
    pins: list[Pin] = []
    for line in text.splitlines():
        if pins and line.strip().startswith("--hash=sha256:"):
            last = pins[-1]
            pins[-1] = Pin(last.name, last.version, last.marker, last.hashes + 1)
            continue
        match = _PIN.match(line)
        if match:
            marker = match["marker"]
            pins.append(
                Pin(
                    canonicalize_name(match["name"]),
                    Version(match["version"]),
                    Marker(marker.strip()) if marker else None,
                    0,
                )
            )
    return pins


def declared_requirements(pyproject: dict[str, object]) -> list[Requirement]:
    """Everything the lock resolves: runtime deps, the dev extra and the build backend."""
    project = pyproject["project"]
    build = pyproject["build-system"]
    assert isinstance(project, dict) and isinstance(build, dict)
    texts = [
        *project["dependencies"],
        *project["optional-dependencies"]["dev"],
        *build["requires"],
    ]
    return [Requirement(text) for text in texts]


def lock_problems(requirements: list[Requirement], pins: list[Pin]) -> list[str]:
    """Why the lock does not satisfy the requirements (empty when it does)."""
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.name, []).append(pin)
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        locked = by_name.get(name)
        if not locked:
            problems.append(f"{requirement} is not in requirements.lock")
            continue
        outside = [
            str(pin.version)
            for pin in locked
            if not requirement.specifier.contains(pin.version, prereleases=True)
        ]
        if outside:
            problems.append(f"{requirement}: the lock pins {', '.join(outside)}")
    problems += [f"{pin.name}=={pin.version} has no --hash" for pin in pins if pin.hashes == 0]
    return problems


@pytest.fixture(scope="module")
def pins() -> list[Pin]:
    return parse_lock(LOCK.read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_lock_satisfies_every_declared_requirement(
    pyproject: dict[str, object], pins: list[Pin]
) -> None:
    problems = lock_problems(declared_requirements(pyproject), pins)
    assert not problems, f"pyproject.toml and requirements.lock disagree ({RELOCK}):\n" + "\n".join(
        problems
    )


def test_the_lock_covers_the_extras_ecomctl_asks_for(
    pyproject: dict[str, object], pins: list[Pin]
) -> None:
    """`elasticsearch[async]` needs aiohttp: the extra's own requirements are locked too."""
    locked = {pin.name for pin in pins}
    missing = []
    for requirement in declared_requirements(pyproject):
        for extra in requirement.extras:
            for text in metadata.requires(requirement.name) or []:
                needed = Requirement(text)
                if needed.marker and needed.marker.evaluate({"extra": extra}) and (
                    canonicalize_name(needed.name) not in locked
                ):
                    missing.append(f"{needed.name} (for {requirement.name}[{extra}])")
    assert not missing, f"not in requirements.lock ({RELOCK}): {', '.join(missing)}"


def test_this_environment_was_installed_from_the_lock(pins: list[Pin]) -> None:
    """What runs the tests is what the lock says: CI and the README install from it."""
    differ = []
    for pin in pins:
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        try:
            installed = Version(metadata.version(pin.name))
        except metadata.PackageNotFoundError:
            differ.append(f"{pin.name}: not installed (lock: {pin.version})")
            continue
        if installed != pin.version:
            differ.append(f"{pin.name}: {installed} installed, lock: {pin.version}")
    assert not differ, (
        "reinstall: .venv/bin/pip install --require-hashes -r requirements.lock\n"
        + "\n".join(differ)
    )


def test_the_opentelemetry_family_is_held_to_one_release_pair(pins: list[Pin]) -> None:
    """Instrumentations 0.XbN pin semconv 0.XbN, and SDK 1.Y.N pins the same semconv: one
    pair for the whole family, or pip cannot resolve it."""
    family = {p.name: p.version for p in pins if p.name.startswith("opentelemetry-")}
    core = {family[n] for n in ("opentelemetry-api", "opentelemetry-sdk")}
    contrib = {
        v for n, v in family.items() if n.startswith("opentelemetry-instrumentation")
    } | {family["opentelemetry-semantic-conventions"]}
    assert len(core) == 1 and len(contrib) == 1, family
    (sdk,), (semconv,) = core, contrib
    assert semconv.pre == ("b", sdk.micro), f"SDK {sdk} does not match semconv {semconv}"


# -- the checker itself -----------------------------------------------------------------------

_LOCK_SAMPLE = """\
# This file was autogenerated by uv via the following command:
#    .ci/relock
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:aaa
    # via click
typer==0.29.2 \\
    --hash=sha256:bbb \\
    --hash=sha256:ccc
    # via ecomctl (pyproject.toml)
"""


def test_parse_lock_reads_pins_markers_and_hashes() -> None:
    colorama, typer = parse_lock(_LOCK_SAMPLE)
    assert (colorama.name, str(colorama.version), colorama.hashes) == ("colorama", "0.4.6", 1)
    assert colorama.marker is not None and "win32" in str(colorama.marker)
    assert (typer.name, str(typer.version), typer.marker, typer.hashes) == (
        "typer", "0.29.2", None, 2,
    )


def test_a_dependency_added_without_relocking_is_reported() -> None:
    pins = parse_lock(_LOCK_SAMPLE)
    problems = lock_problems([Requirement("typer>=0.15"), Requirement("Rich>=13")], pins)
    assert problems == ["Rich>=13 is not in requirements.lock"]


def test_a_range_the_lock_falls_outside_is_reported() -> None:
    problems = lock_problems([Requirement("typer>=1")], parse_lock(_LOCK_SAMPLE))
    assert problems == ["typer>=1: the lock pins 0.29.2"]


def test_a_pin_without_hashes_is_reported() -> None:
    pins = parse_lock("typer==0.29.2\n")
    assert lock_problems([Requirement("typer")], pins) == ["typer==0.29.2 has no --hash"]
