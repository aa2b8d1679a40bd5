"""``ecomctl load run``: Locust load profiles against the gateway, exact HDR percentiles.

Locust runs only in its own processes (``import locust`` patches the standard library with
gevent): nothing here imports it. ``profiles`` names the locustfiles and shapes,
``runner`` spawns and supervises the processes, ``result`` merges their histograms and
builds the result document.
"""
