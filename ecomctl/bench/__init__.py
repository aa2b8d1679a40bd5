"""``ecomctl bench``: ecomctl's own cost as ratios against floors measured in the same run.

Each row runs a floor (what the machine does without ecomctl: ``pgbench -i``, a bare ASGI
app under the same server and the same Locust users...) and ecomctl doing the same work,
and reports ecomctl / floor against a target. Everything runs in a scratch database, Redis
database and search alias, so a user's seeded shop is left alone.
"""
