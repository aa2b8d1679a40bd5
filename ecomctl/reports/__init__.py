"""Reports of a run's result document (``ecomctl.result/v1``) in other forms than the
terminal: ``html`` writes one self-contained page with inline SVG charts (``svg``)."""
