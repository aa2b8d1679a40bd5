"""A shopper's journeys, written once, free of I/O, for every driver.

A journey is a generator: it yields what it needs done next (a ``Request``, a ``Wait``, or
requests sent ``Together``) and is sent back the answer (a ``Response``, None, or a tuple of
``Response``). Drivers only carry the instructions out: ``ecomctl.sim.client`` with asyncio
(over HTTP with httpx, or in-process against the services), ``scenarios/shop.py`` with
Locust's gevent client. What to ask, in which order, when to retry, log in again or give up
is decided here, so both kinds of shopper behave the same (as httpx's sync and async clients
share one ``BaseClient``).

Nothing here may import asyncio, gevent or locust: Locust monkey-patches its process, and
the simulator runs on an asyncio loop.
"""
