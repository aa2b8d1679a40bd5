"""Faults: the catalogue of what can go wrong (``catalogue``), the flagd flag file a running
shop watches (``flag_file``, ``flag_source``, ``watcher``) and windows on a schedule
(``schedule``)."""
