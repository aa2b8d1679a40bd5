"""ecomctl: a traced e-commerce service stack on real backends, as a reproducible workload."""

__version__ = "0.1.0"
