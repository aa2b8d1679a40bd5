"""Simulators of the third parties that do not exist on a laptop (payment gateway, carrier).

They are real HTTP servers with configurable latency and faults, so the services talk to them
exactly as they would talk to the real thing. Import the submodules you need: they pull in
Starlette and uvicorn, which the CLI must not load at start-up.
"""
