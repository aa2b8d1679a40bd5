"""The pure model: values, entities, rules and events. No I/O, no third-party clients."""
