"""What `ecomctl load run` offers and refuses before any Locust process starts."""

from __future__ import annotations

from pathlib import Path

from ecomctl.load.profiles import PROFILES, ProfileName
from ecomctl.load.runner import LoadRequest, locust_commands, owned_locust_options


def test_every_profile_is_a_choice_and_every_choice_a_profile() -> None:
    assert [p.value for p in ProfileName] == list(PROFILES)


def test_options_ecomctl_sets_are_refused_and_the_rest_pass_to_locust(tmp_path: Path) -> None:
    args = ("--tags", "checkout", "--csv=out/stats", "-u", "5", "--run-time=1m", "--html", "x")
    assert owned_locust_options(args) == ["-u", "--run-time=1m"]
    request = LoadRequest(Path("shop.py"), users=2, spawn_rate=1, duration_s=5, workers=2,
                          locust_args=("--tags", "checkout"))
    master, *workers = locust_commands(request, "http://127.0.0.1:1", tmp_path)
    at = master.index("--tags")
    assert master[at + 1] == "checkout" and "--master" in master
    # The master hands its options to the workers (Locust's spawn message).
    assert workers and all("--tags" not in worker for worker in workers)
