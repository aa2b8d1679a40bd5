from __future__ import annotations

import random

from ecomctl.backoff import jittered, next_backoff


def test_backoff_doubles_from_the_first_delay_up_to_the_cap() -> None:
    delays = [0.0]
    for _ in range(8):
        delays.append(next_backoff(delays[-1], 0.1, 5.0))
    assert delays[1:] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_jitter_spreads_a_delay_over_its_upper_half() -> None:
    rng = random.Random(7)
    waits = [jittered(2.0, rng) for _ in range(1000)]
    assert all(1.0 <= w <= 2.0 for w in waits)
    # Processes that failed together do not retry together: the waits spread out.
    assert len({round(w, 6) for w in waits}) > 990
    assert min(waits) < 1.1 and max(waits) > 1.9
