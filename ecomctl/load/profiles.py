"""Load profiles: a name for a locustfile, a load shape and sensible defaults."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ecomctl.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent

# What the Locust processes read (scenarios/shop.py, shapes.py, hdr_hook.py import these).
SHAPE_ENV = "ECOMCTL_LOAD_SHAPE"
PACING_ENV = "ECOMCTL_LOAD_PACING_S"
HDR_DIR_ENV = "ECOMCTL_LOAD_HDR_DIR"
SHOPPERS_FILE_ENV = "ECOMCTL_SHOPPERS_FILE"
ACCOUNT_OFFSET_ENV = "ECOMCTL_LOAD_ACCOUNT_OFFSET"
THINK_TIME_ENV = "ECOMCTL_LOAD_THINK_TIME"


@dataclass(frozen=True)
class Profile:
    name: str
    locustfile: str
    """A file name in the scenarios directory."""
    description: str
    shape: str | None = None
    """A shape of scenarios/shapes.py (``ECOMCTL_LOAD_SHAPE``)."""
    constant_rate: bool = False
    """Fixed-interval arrivals, latency from the intended start (``ECOMCTL_LOAD_PACING_S``)."""
    users: int = 20
    spawn_rate: float = 10.0
    duration_s: float = 60.0


class ProfileName(StrEnum):
    """The profiles' names, as choices for the CLI (PROFILES has one of each)."""

    mixed = "mixed"
    browse = "browse"
    search = "search"
    checkout = "checkout"
    ramp = "ramp"
    step = "step"
    spike = "spike"
    soak = "soak"
    constant_rate = "constant-rate"


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("mixed", "mixed_shop.py", "every journey, OpenTelemetry Demo weights"),
        Profile("browse", "browse.py", "category pages and product pages"),
        Profile("search", "search.py", "full-text search and the first hit"),
        Profile("checkout", "checkout.py", "cart and checkout (402 declines counted)"),
        Profile("ramp", "mixed_shop.py", "mixed shop, users rising linearly to --users",
                shape="ramp", users=50, spawn_rate=50),
        Profile("step", "mixed_shop.py", "mixed shop, --users in four steps", shape="step",
                users=40),
        Profile("spike", "mixed_shop.py", "mixed shop, a fifth of --users with a spike to all",
                shape="spike", users=50, spawn_rate=50),
        Profile("soak", "mixed_shop.py", "mixed shop held for a long time", shape="soak",
                duration_s=600),
        Profile("constant-rate", "mixed_shop.py",
                "mixed shop at a constant arrival rate, coordinated omission corrected",
                constant_rate=True),
    )
}


def scenarios_dir() -> Path:
    """``ecomctl/_scenarios`` in a wheel, the checkout's ``scenarios/`` in an editable one."""
    for candidate in (_PACKAGE_DIR / "_scenarios", _PACKAGE_DIR.parent / "scenarios"):
        if (candidate / "shop.py").is_file():
            return candidate
    raise ConfigError("ecomctl's scenarios directory is missing from this installation")


def locustfile_of(p: Profile) -> Path:
    return scenarios_dir() / p.locustfile
