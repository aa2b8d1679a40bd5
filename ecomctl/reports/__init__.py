"""Reports of a result (``ecomctl.results``: a simulation, a load run or a bench) in other
forms than the terminal: ``html`` writes one self-contained page with inline SVG charts
(``svg``)."""
