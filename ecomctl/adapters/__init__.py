"""The only code that talks to the outside world: databases, brokers, HTTP peers."""
