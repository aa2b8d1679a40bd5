"""The ports the services depend on: Protocols that adapters implement (and tests fake)."""
