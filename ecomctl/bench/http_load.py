"""The gateway rows' load generators: ``wrk`` (C, one thread, epoll) and Locust.

Locust's ``FastHttpUser`` shares the two cores with the server and tops out near 4,400
requests/s against a bare ASGI app that ``wrk`` drives to ~22,000 here: measured with
Locust, the floor is the generator's, not the app's. ``wrk`` is the headline; the Locust
figure stays beside it because it is the load generator ecomctl's users run.
"""

from __future__ import annotations

import csv
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from ecomctl.bench.commands import BenchFailed, run_command
from ecomctl.load.profiles import scenarios_dir

CONNECTIONS = 32
WRK_PACKAGE = "wrk"

# wrk's Lua: every request a product id drawn from the list (math.random, seeded by wrk).
_WRK_SCRIPT = """\
local ids = {{{ids}}}
request = function()
  return wrk.format("GET", "/api/products/" .. ids[math.random(#ids)])
end
"""
_REQUESTS_PER_S = re.compile(r"^Requests/sec:\s+([0-9.]+)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"^\s*Socket errors: (.*)$", re.MULTILINE)


def ensure_wrk(log_file: Path) -> None:
    """``wrk`` on PATH, apt-installed (Debian's package) when missing and allowed."""
    if shutil.which("wrk") is None:
        from ecomctl.stack.toolchain import install_debian_packages

        install_debian_packages([WRK_PACKAGE], log_file=log_file)


def wrk_rps(url: str, ids: list[int], seconds: int, work_dir: Path, name: str) -> float:
    """Requests/s ``wrk -t1 -c32`` gets from ``url`` over ``seconds``; any non-2xx answer or
    socket error fails the measurement (a server that refuses is not fast)."""
    script = work_dir / "products.lua"
    script.write_text(_WRK_SCRIPT.format(ids=", ".join(map(str, ids))))
    out = run_command(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script),
                       url], None, name=f"wrk-{name}", log=work_dir / f"wrk-{name}.log")
    return parse_wrk(out, f"wrk against {name} (log: {work_dir / f'wrk-{name}.log'})")


def parse_wrk(out: str, where: str) -> float:
    rate, total = _REQUESTS_PER_S.search(out), _REQUESTS.search(out)
    if rate is None or total is None or not int(total.group(1)):
        raise BenchFailed(f"{where}: no requests measured")
    refused = _NON_2XX.search(out)
    if refused is not None:
        raise BenchFailed(f"{where}: {refused.group(1)} of {total.group(1)} answers were not 2xx")
    errors = _SOCKET_ERRORS.search(out)
    if errors is not None:
        raise BenchFailed(f"{where}: socket errors ({errors.group(1).strip()})")
    return float(rate.group(1))


def locust_rps(
    url: str, ids: list[int], seconds: int, env: Mapping[str, str], work_dir: Path, name: str
) -> float:
    """Requests/s of ``CONNECTIONS`` Locust ``FastHttpUser``s without waits (the bench's
    ``bench_product`` scenario); failures fail the measurement."""
    prefix = work_dir / f"locust-{name}"
    run_command(
        [sys.executable, "-m", "locust", "-f", str(scenarios_dir() / "bench_product.py"),
         "--headless", "-u", str(CONNECTIONS), "-r", str(CONNECTIONS), "-t", f"{seconds}s",
         "--host", url, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
         "--stop-timeout", "2"],
        {**env, "ECOMCTL_BENCH_PRODUCT_IDS": ",".join(map(str, ids))},
        name=f"locust-{name}", log=work_dir / f"locust-{name}.log",
    )
    with open(f"{prefix}_stats.csv", newline="") as stats:
        total = next(r for r in csv.DictReader(stats) if r["Name"] == "Aggregated")
    if int(total["Failure Count"]) or not int(total["Request Count"]):
        raise BenchFailed(f"Locust against {name}: {total['Failure Count']} failures of "
                          f"{total['Request Count']} requests (log: {prefix}.log)")
    return float(total["Requests/s"])
