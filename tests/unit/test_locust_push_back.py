"""The Locust shopper waits out a push-back as a real client does (``protocol.pushed_back``,
the journeys' one policy): a 503 or 429 with ``Retry-After`` is sent again after the wait,
the attempt that was pushed back is recorded under a name of its own as a success, the final
answer under the endpoint's name, and the wait is in the journey's time, not the request's.

Real Locust (a ``FastHttpUser``, Locust's own statistics and ``hdr_hook``'s) against a fake
gateway on a loopback port, in a subprocess: importing locust monkey-patches the process
with gevent, which this test process must not be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ecomctl.journeys import routes
from ecomctl.journeys.session import PUSH_BACK_RETRIES

ROOT = Path(__file__).resolve().parents[2]

LOCUST_RUN = """
import json, time

import locust
from gevent.pywsgi import WSGIServer
from locust.env import Environment

import hdr_hook
import shop
from ecomctl.journeys.shopper import CatalogueSample

# Per path, the answers in turn (status, error code, Retry-After); the last one repeats.
SCRIPT = {
    "/api/users/login": [(503, "overloaded", "1"), (200, None, None)],
    "/api/products/7": [(429, "rate_limited", "1"), (200, None, None)],
    "/api/products/8": [(503, "overloaded", "0")],
}
BODIES = {"/api/users/login": {"token": "t1"}}
sent = []


def gateway(environ, start_response):
    path = environ["PATH_INFO"]
    answers = SCRIPT[path]
    status, code, retry_after = answers.pop(0) if len(answers) > 1 else answers[0]
    sent.append([path, status, time.perf_counter()])
    body = {"error": code, "message": "busy"} if code else BODIES.get(path, {})
    headers = [("Content-Type", "application/json")]
    if retry_after is not None:
        headers.append(("Retry-After", retry_after))
    start_response(f"{status} Answer", headers)
    return [json.dumps(body).encode()]


server = WSGIServer(("127.0.0.1", 0), gateway, log=None)
server.start()


class Shopper(shop.ShopUser):
    host = f"http://127.0.0.1:{server.server_port}"


env = Environment(user_classes=[Shopper], events=locust.events)
env.create_local_runner()
user = Shopper(env)
user.shop = CatalogueSample((7, 8), ("desks",), ("oak",))
user.drive(user.session.login("ann@example.test", "pw-pw-pw-pw"))
user.run_journey("pushed back", lambda u: u.view_product(7))
user.run_journey("refused", lambda u: u.view_product(8))
server.stop()

stats = {f"{e.method} {e.name}": [e.num_requests, e.num_failures, e.max_response_time]
         for e in env.stats.entries.values()}
document = hdr_hook.RECORDER.document(final=True)
print(json.dumps({
    "sent": sent,
    "token": user.session.token,
    "stats": stats,
    "total_failures": env.stats.total.num_failures,
    "hdr": {k: [v["count"], v["failures"]] for k, v in document["endpoints"].items()},
    "hdr_max_ms": {k: hdr_hook.RECORDER.endpoints[k].histogram.max_us / 1000
                   for k in document["endpoints"]},
    "journeys": {k: [v["count"], v["failures"]] for k, v in document["journeys"].items()},
    "journey_max_ms": {k: hdr_hook.RECORDER.journeys[k].histogram.max_us / 1000
                       for k in document["journeys"]},
    "errors": document["errors"],
}))
"""


def _run_locust() -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "scenarios"), str(ROOT)])}
    for name in ("ECOMCTL_LOAD_SPAN_DIR", "OTEL_EXPORTER_OTLP_ENDPOINT", "ECOMCTL_LOAD_HDR_DIR"):
        env.pop(name, None)  # no tracing, no files
    done = subprocess.run([sys.executable, "-c", LOCUST_RUN], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_push_back_is_waited_out_recorded_apart_and_never_a_failure() -> None:
    run = _run_locust()
    login, product = "POST /api/users/login", "GET /api/products/{id}"
    retried_login = f"POST {routes.retried_name(routes.LOGIN.name, 503)}"
    retried_product = f"GET {routes.retried_name(routes.PRODUCT.name, 429)}"
    refused = f"GET {routes.retried_name(routes.PRODUCT.name, 503)}"
    stats = run["stats"]

    # The login: 503 + Retry-After 1, then 200. One success under the endpoint's name, the
    # pushed-back attempt apart, no failure; the session holds the token.
    assert run["token"] == "t1"
    assert stats[login][:2] == [1, 0] and stats[retried_login][:2] == [1, 0]
    # The product page: 429 + Retry-After 1, then 200, the same way; and a page pushed back
    # every time: retried PUSH_BACK_RETRIES times, then its last answer is the one failure.
    assert stats[retried_product][:2] == [1, 0]
    assert stats[refused][:2] == [PUSH_BACK_RETRIES, 0]
    assert stats[product][:2] == [2, 1]
    assert run["total_failures"] == 1 and run["errors"] == {"503 overloaded": 1}
    # hdr_hook (the load run's result) records what Locust's statistics do.
    assert run["hdr"] == {name: entry[:2] for name, entry in stats.items()}

    # The wait was honoured: each retry at least Retry-After (1 s) after its push-back...
    sent = run["sent"]
    for path in ("/api/users/login", "/api/products/7"):
        (_, first, at), (_, second, again) = [s for s in sent if s[0] == path]
        assert (first, second) in [(503, 200), (429, 200)] and again - at >= 1.0
    # ...and is in no request's time, but in the journey's.
    assert stats[login][2] < 500 and run["hdr_max_ms"][login] < 500
    assert run["hdr_max_ms"][product] < 500
    assert run["journeys"]["pushed back"] == [1, 0]
    assert run["journey_max_ms"]["pushed back"] >= 1000
    assert run["journeys"]["refused"] == [1, 1]
