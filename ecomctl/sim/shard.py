"""One shopper process of ``checkout simulate --processes``: ``python -m ecomctl.sim.shard
SPEC.json``. The parent (``ecomctl.sim.processes``) writes the spec and reads the output;
this process reports only through those files and its exit code."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from ecomctl import event_loop
from ecomctl.config import Settings
from ecomctl.seed.credentials import load_credentials
from ecomctl.sim.runner import SimulationPlan
from ecomctl.sim.simulate import simulate_shard

GO_TIMEOUT_S = 600.0


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    ready_file, go_file = Path(spec["ready_file"]), Path(spec["go_file"])

    async def ready() -> None:
        ready_file.touch()
        deadline = time.monotonic() + GO_TIMEOUT_S
        while not go_file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the parent never said go")
            await asyncio.sleep(0.02)

    return await simulate_shard(
        Settings.from_env(), SimulationPlan.from_json(spec["plan"]),
        shoppers=load_credentials(Path(spec["credentials"])).shoppers,
        first_account=int(spec["first_account"]), trace_file=Path(spec["trace_file"]),
        ready=ready, payment_gateway_url=spec.get("payment_gateway_url"),
    )


def main(argv: list[str]) -> None:
    """Exit 0 with the output file written; an exception exits 1 with its traceback on
    stderr, which the parent shows (the parent decides what that means for the command)."""
    spec = json.loads(Path(argv[1]).read_text())
    output = event_loop.run(_run(spec))
    Path(spec["out"]).write_text(json.dumps(output))


if __name__ == "__main__":
    main(sys.argv)
